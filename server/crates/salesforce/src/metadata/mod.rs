//! Metadata API over REST: building deploy zips for the contractor's OAuth app
//! ([`ExternalClientAppSpec`], or the legacy [`ConnectedAppSpec`]), deploying them, and
//! reading deploy results (§4).

mod connected_app;
mod deploy;
mod eca;
mod package;
mod read;
mod spec;
mod xml;

pub use connected_app::ConnectedAppSpec;
pub use deploy::{
    DeployDetails, DeployId, DeployMessage, DeployOptions, DeployResult, DeployStatus, TestLevel,
};
pub use eca::ExternalClientAppSpec;
pub use package::{DeployZip, PackageBuilder};
pub(crate) use read::SESSION_PLACEHOLDER;
pub use read::{ReadComponent, parse_read_response};
pub use spec::{ApiName, SpecError, TrustedIpRange};
