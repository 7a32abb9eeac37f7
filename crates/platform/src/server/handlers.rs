//! The one way a service's generated tonic trait is implemented: each RPC hands its request to a
//! handler, `async fn(&Api, Request<Req>) -> Result<Resp, AppError>`, and the handler's error
//! becomes a `tonic::Status` in one place ([`respond`]).

use tonic::{Response, Status};

use crate::AppError;

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
/// }
/// ```
#[macro_export]
macro_rules! rpc_handlers {
    (impl $service:ident for $api:ty { $($method:ident($request:ty) -> $response:ty = $handler:path;)* }) => {
        #[::tonic::async_trait]
        impl $service for $api {
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
