//! The three trialops services in one process: [`ServiceSet`]. `trialops up`, `trialops demo`
//! and the tests that need the whole set start it here, one way.
//!
//! Each service is bound before the next is configured, so the others reach it at the address
//! it really has (port 0 picks a free one): enrollment first, then dosing (which calls
//! enrollment), then outcomes (which calls both).

use std::net::SocketAddr;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use trialops_platform::Settings;
use trialops_platform::config::settings::Sources;
use trialops_platform::server::Application;

/// Which service a settings value is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Enrollment.
    Enrollment,
    /// Dosing.
    Dosing,
    /// Outcomes.
    Outcomes,
}

/// The three services, built and bound, not yet serving.
pub struct ServiceSet {
    enrollment: Application,
    dosing: Application,
    outcomes: Application,
}

/// Where each service of a set listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addresses {
    /// Enrollment's gRPC address.
    pub enrollment: SocketAddr,
    /// Dosing's gRPC address.
    pub dosing: SocketAddr,
    /// Outcomes' gRPC address.
    pub outcomes: SocketAddr,
}

impl Addresses {
    /// The plaintext URLs `[enrollment, dosing, outcomes]` clients use.
    pub fn urls(&self) -> [String; 3] {
        [self.enrollment, self.dosing, self.outcomes].map(|a| format!("http://{a}"))
    }
}

impl ServiceSet {
    /// Builds and binds the three services. `settings` gives each service's settings;
    /// enrollment's own section is read from `sources` (its randomization secret file), and
    /// dosing's and outcomes' say where they reach the services bound before them.
    /// `enrollment` carries enrollment's options (a fixed randomization secret, an
    /// authenticator, the clock); the three services run on its clock. `tracing` gives a service
    /// a subscriber of its own (see `Options::tracing`), or leaves it to the global one.
    pub async fn start(
        settings: impl Fn(Service) -> anyhow::Result<Settings>,
        sources: &Sources,
        mut enrollment: trialops_enrollment::Options,
        tracing: impl Fn(Service) -> Option<tracing::Dispatch>,
    ) -> anyhow::Result<ServiceSet> {
        let clock = enrollment.server.clock.clone();
        if let Some(dispatch) = tracing(Service::Enrollment) {
            enrollment.server.tracing = Some(dispatch);
        }
        let enrollment =
            trialops_enrollment::build(settings(Service::Enrollment)?, sources.section()?, enrollment).await?;
        let enrollment_url = format!("http://{}", enrollment.local_addr()?);
        let config = trialops_dosing::Config {
            enrollment_url: enrollment_url.clone(),
        };
        let options = |service| trialops_platform::server::Options {
            clock: clock.clone(),
            authenticator: None,
            tracing: tracing(service),
            audit_key: None,
        };
        let dosing = trialops_dosing::build(settings(Service::Dosing)?, config, options(Service::Dosing)).await?;
        let config = trialops_outcomes::Config {
            enrollment_url,
            dosing_url: format!("http://{}", dosing.local_addr()?),
        };
        let outcomes =
            trialops_outcomes::build(settings(Service::Outcomes)?, config, options(Service::Outcomes)).await?;
        Ok(ServiceSet {
            enrollment,
            dosing,
            outcomes,
        })
    }

    /// Where the services listen.
    pub fn addresses(&self) -> anyhow::Result<Addresses> {
        Ok(Addresses {
            enrollment: self.enrollment.local_addr()?,
            dosing: self.dosing.local_addr()?,
            outcomes: self.outcomes.local_addr()?,
        })
    }

    /// Serves until `shutdown` is cancelled; all three drain together.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let (a, b, c) = tokio::join!(
            self.enrollment.run(shutdown.clone()),
            self.dosing.run(shutdown.clone()),
            self.outcomes.run(shutdown)
        );
        a.and(b).and(c)
    }

    /// Serves in the background until `shutdown` is cancelled.
    pub fn spawn(self, shutdown: CancellationToken) -> JoinHandle<anyhow::Result<()>> {
        tokio::spawn(self.run(shutdown))
    }

    /// The three services apart (enrollment, dosing, outcomes), to run or stop one by one.
    pub fn into_parts(self) -> [Application; 3] {
        [self.enrollment, self.dosing, self.outcomes]
    }
}

/// The test kit: the whole set on fresh databases of one backend (SQLite or PostgreSQL),
/// serving in the background, for the tests that need more than one service.
#[cfg(feature = "testing")]
pub mod testing {
    use trialops_platform::Settings;
    use trialops_platform::config::settings::Sources;
    use trialops_platform::testing::{Backend, RunningServer, TestDatabase, settings};

    use super::{Addresses, Service, ServiceSet};

    /// The three services, each on its own fresh database, serving until [`TestStack::stop`].
    pub struct TestStack {
        /// Enrollment's, dosing's and outcomes' databases, in that order.
        pub dbs: [TestDatabase; 3],
        /// Where the services listen.
        pub addresses: Addresses,
        servers: [Option<RunningServer>; 3],
    }

    impl TestStack {
        /// Starts the set on `backend` with enrollment's test secret; `configure` adjusts each
        /// service's settings (JWT, a protocol folder, timeouts). Panics when `backend` is not
        /// configured here: a test never passes by skipping its backend.
        pub async fn start(backend: Backend, configure: impl Fn(Service, &mut Settings)) -> TestStack {
            let options = trialops_enrollment::Options {
                randomization_secret: Some(trialops_enrollment::testing::SECRET.to_vec()),
                ..Default::default()
            };
            Self::start_with(backend, options, configure).await
        }

        /// [`TestStack::start`] with enrollment's options given.
        pub async fn start_with(
            backend: Backend,
            enrollment: trialops_enrollment::Options,
            configure: impl Fn(Service, &mut Settings),
        ) -> TestStack {
            let mut dbs = Vec::new();
            for _ in 0..3 {
                let db = TestDatabase::create(backend).await;
                dbs.push(db.unwrap_or_else(|| panic!("{backend:?} is not configured")));
            }
            let dbs: [TestDatabase; 3] = dbs.try_into().unwrap_or_else(|_| panic!("three databases"));
            let urls = [dbs[0].url.clone(), dbs[1].url.clone(), dbs[2].url.clone()];
            let set = ServiceSet::start(
                |service| {
                    let mut s = settings(&urls[service as usize]);
                    s.dependency_timeout_ms = 2000;
                    configure(service, &mut s);
                    Ok(s)
                },
                &Sources::default(),
                enrollment,
                |_| None,
            )
            .await
            .unwrap_or_else(|e| panic!("starting the services: {e:#}"));
            let addresses = set.addresses().unwrap_or_else(|e| panic!("{e:#}"));
            TestStack {
                dbs,
                addresses,
                servers: set.into_parts().map(|app| Some(RunningServer::spawn(app))),
            }
        }

        /// `http://…` of a service.
        pub fn url(&self, service: Service) -> String {
            let [enrollment, dosing, outcomes] = self.addresses.urls();
            match service {
                Service::Enrollment => enrollment,
                Service::Dosing => dosing,
                Service::Outcomes => outcomes,
            }
        }

        /// Drains and stops one service (to test the others without it); panics if it failed.
        pub async fn stop_one(&mut self, service: Service) {
            if let Some(server) = self.servers[service as usize].take() {
                server.stop().await;
            }
        }

        /// Drains and stops the services still running, outcomes first; panics if one failed.
        pub async fn stop(mut self) {
            for service in [Service::Outcomes, Service::Dosing, Service::Enrollment] {
                self.stop_one(service).await;
            }
        }
    }

    /// Settings changes for the set: none.
    pub fn unchanged(_: Service, _: &mut Settings) {}
}
