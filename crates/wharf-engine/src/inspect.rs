//! `inspect NAME…`: which object a name means (docker's CLI order without `--type`:
//! container, image, network, volume) and its docker object (`--size` for containers). The
//! objects' shapes are the services' own (`run::inspect_json`, `Engine::inspect_image`,
//! `Engine::inspect_network`, `volumes::inspect_json`).
//!
//! Must not: print, or turn a failure other than "not found" into "no such object".

use crate::{Engine, EngineError};
use serde_json::Value;
use wharf_types::error::{ErrorKind, HasKind};

/// An object kind `inspect --type` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Container,
    Image,
    Network,
    Volume,
}

impl ObjectKind {
    /// docker's order when no `--type` is given.
    pub const SEARCH_ORDER: [ObjectKind; 4] = [
        ObjectKind::Container,
        ObjectKind::Image,
        ObjectKind::Network,
        ObjectKind::Volume,
    ];

    /// A `--type` value wharf has objects of; None for any other (docker's CLI also knows
    /// swarm kinds wharf has none of: the caller renders docker's list).
    pub fn parse(s: &str) -> Option<ObjectKind> {
        match s {
            "container" => Some(ObjectKind::Container),
            "image" => Some(ObjectKind::Image),
            "network" => Some(ObjectKind::Network),
            "volume" => Some(ObjectKind::Volume),
            _ => None,
        }
    }
}

/// docker's `--type` values (its CLI's list, swarm kinds included), for its error text.
pub const DOCKER_TYPES: &[&str] = &[
    "config",
    "container",
    "image",
    "network",
    "node",
    "plugin",
    "secret",
    "service",
    "task",
    "volume",
];

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Image(#[from] crate::images::ImageError),
}

impl HasKind for InspectError {
    fn kind(&self) -> ErrorKind {
        match self {
            InspectError::Engine(e) => e.kind(),
            InspectError::Image(e) => e.kind(),
        }
    }
}

impl Engine {
    /// The docker object `name` names: of `kind`, or of the first kind in
    /// [`ObjectKind::SEARCH_ORDER`] that has one. None when none has; other errors as they are.
    pub fn inspect_object(
        &self,
        name: &str,
        kind: Option<ObjectKind>,
        size: bool,
    ) -> Result<Option<Value>, InspectError> {
        let kinds: &[ObjectKind] = match &kind {
            Some(k) => std::slice::from_ref(k),
            None => &ObjectKind::SEARCH_ORDER,
        };
        for k in kinds {
            let found: Result<Value, InspectError> = match k {
                ObjectKind::Container => self
                    .container(name)
                    .map(|info| {
                        if size {
                            crate::run::inspect_json_sized(self, &info)
                        } else {
                            crate::run::inspect_json(self, &info)
                        }
                    })
                    .map_err(Into::into),
                ObjectKind::Image => self.inspect_image(name).map_err(Into::into),
                ObjectKind::Network => self.inspect_network(name).map_err(Into::into),
                ObjectKind::Volume => self
                    .volume(name)
                    .map(|v| crate::volumes::inspect_json(&v))
                    .map_err(Into::into),
            };
            match found {
                Ok(v) => return Ok(Some(v)),
                // a name that is no valid reference is simply no image of that name
                Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::InvalidArgument) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}
