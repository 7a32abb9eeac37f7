//! The one way a service's generated tonic trait is implemented: each RPC hands its request to a
//! handler, `async fn(&Api, Request<Req>) -> Result<Resp, AppError>`, and the handler's error
//! becomes a `tonic::Status` in one place ([`respond`]).

use tonic::{Response, Status};

use crate::AppError;

/// The stream a server-streaming handler answers with.
pub type EventStream<T> = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send + 'static>>;

/// A handler's answer as tonic returns it.
pub fn respond<T>(result: Result<T, AppError>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(Status::from)
}

/// Implements a generated tonic service trait by delegation, one line per RPC:
///
/// ```ignore
/// trialops_platform::rpc_handlers! {
///     impl DosingService for DosingApi {
///         start_cycle(pb::StartCycleRequest) -> pb::StartCycleResponse = cycles::start;
///     }
///     stream WatchEventsStream: watch_events(pb::WatchEventsRequest) -> pb::WatchEventsResponse
///         = audit::watch;
/// }
/// ```
///
/// A server-streaming RPC's handler answers an [`EventStream`] of its messages.
#[macro_export]
macro_rules! rpc_handlers {
    (
        impl $service:ident for $api:ty { $($method:ident($request:ty) -> $response:ty = $handler:path;)* }
        $(stream $stream:ident: $smethod:ident($srequest:ty) -> $sresponse:ty = $shandler:path;)*
    ) => {
        #[::tonic::async_trait]
        impl $service for $api {
            $(
                type $stream = $crate::server::handlers::EventStream<$sresponse>;

                async fn $smethod(
                    &self,
                    request: ::tonic::Request<$srequest>,
                ) -> ::std::result::Result<::tonic::Response<Self::$stream>, ::tonic::Status> {
                    $crate::server::handlers::respond($shandler(self, request).await)
                }
            )*
            $(
                async fn $method(
                    &self,
                    request: ::tonic::Request<$request>,
                ) -> ::std::result::Result<::tonic::Response<$response>, ::tonic::Status> {
                    $crate::server::handlers::respond($handler(self, request).await)
                }
            )*
        }
    };
}
