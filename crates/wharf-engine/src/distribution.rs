//! Moving images in and out: `load`/`save` (archives, `wharf_store::archive`) and
//! `pull`/`push`/`login`/`logout` (registries, `wharf_registry::client`, given the registry
//! settings of the daemon.json the engine read once). Every entry point asks the admin policy
//! first (or, for load, judges the names an archive brought), and pull/load emit docker's
//! image events. Progress goes to a caller's callback; the types a front end renders are
//! re-exported here so it need not name wharf-store or wharf-registry.
//!
//! Must not: parse argv, print, read the terminal, or read daemon.json again.

use crate::images::ImageError;
use crate::Engine;
use std::io::{Read, Write};
use std::path::PathBuf;
use wharf_registry::client::{self, PullOptions};
use wharf_store::archive::{parse_platform, ArchiveFormat, LoadOptions, SaveOptions};
use wharf_types::{Digest, ImageRef};

pub use wharf_registry::client::config::Stored as CredentialsStored;
pub use wharf_registry::client::{Progress, PullOutcome};
pub use wharf_registry::{Config as RegistryServerConfig, Server as RegistryServer};
pub use wharf_store::archive::LoadedImage;

/// `pull NAME[:TAG|@DIGEST]`.
#[derive(Clone, Default)]
pub struct PullRequest {
    pub reference: String,
    /// `--platform os/arch[/variant]`.
    pub platform: Option<String>,
    /// Credentials (user, password) for the named registry that come with the request (an
    /// Engine API client's `X-Registry-Auth`); `None`: the stored ones (`login`).
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for PullRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullRequest")
            .field("reference", &self.reference)
            .field("platform", &self.platform)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|(u, _)| (u, "<hidden>")),
            )
            .finish()
    }
}

/// `run`/`create --pull`: when the image comes from its registry (docker's values).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Only when the store does not have it (docker's default).
    #[default]
    Missing,
    /// Every time, before the container is made.
    Always,
    /// Never: a missing image is an error.
    Never,
}

impl std::str::FromStr for PullPolicy {
    type Err = crate::refusal::ValidationError;
    fn from_str(s: &str) -> Result<PullPolicy, Self::Err> {
        match s {
            "missing" => Ok(PullPolicy::Missing),
            "always" => Ok(PullPolicy::Always),
            "never" => Ok(PullPolicy::Never),
            other => Err(crate::refusal::ValidationError::PullPolicy {
                value: other.to_string(),
            }),
        }
    }
}

/// What [`Engine::ensure_image`] did.
#[derive(Debug)]
pub enum EnsureOutcome {
    /// The store had it (and the policy did not ask for a pull).
    Present,
    Pulled(PullOutcome),
}

/// `push NAME[:TAG]`.
#[derive(Clone, Default)]
pub struct PushRequest {
    pub reference: String,
    /// Credentials that come with the request (an Engine API client's `X-Registry-Auth`);
    /// `None`: the stored ones, for a root caller only (see [`Engine::pull_image`]).
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for PushRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushRequest")
            .field("reference", &self.reference)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|(u, _)| (u, "<hidden>")),
            )
            .finish()
    }
}

/// `load`: the archive comes as a reader from the front end.
#[derive(Debug, Clone, Default)]
pub struct LoadRequest {
    /// `--platform`: only images for this platform.
    pub platform: Option<String>,
}

/// `save IMAGE...`.
#[derive(Debug, Clone, Default)]
pub struct SaveRequest {
    pub images: Vec<String>,
    /// `docker` (default) or `oci`.
    pub format: String,
    pub platform: Option<String>,
}

/// Where `save` writes.
pub enum SaveOutput<'a> {
    /// A file, written under a temporary name and renamed when complete.
    File(PathBuf),
    /// A stream (stdout, a response body); flushed at the end.
    Writer(&'a mut dyn Write),
}

/// `login [SERVER]` with the credentials the front end collected (`Debug` hides the password).
#[derive(Clone, Default)]
pub struct LoginRequest {
    /// A host, `https://host/...`; `None`: Docker Hub.
    pub server: Option<String>,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// Where `login` put the secret.
#[derive(Debug)]
pub struct LoginOutcome {
    /// The registry host logged in to.
    pub host: String,
    pub stored: CredentialsStored,
}

/// `logout [SERVER]`.
#[derive(Debug, Clone, Default)]
pub struct LogoutRequest {
    pub server: Option<String>,
}

/// What `logout` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutOutcome {
    /// docker's credentials key of the registry.
    pub key: String,
    /// Credentials were there and are gone.
    pub removed: bool,
}

/// The registry host of a `login`/`logout` argument (docker's Hub aliases → `docker.io`).
pub fn server_host(s: Option<&str>) -> String {
    let s = s.unwrap_or("docker.io");
    let h = s
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or(s);
    if h == "index.docker.io" || h == "registry-1.docker.io" {
        "docker.io".to_string()
    } else {
        h.to_string()
    }
}

fn platform(p: Option<&str>) -> Result<Option<wharf_types::oci::Platform>, ImageError> {
    Ok(p.map(parse_platform).transpose()?)
}

impl Engine {
    /// Whether a pull or push without credentials of its own may use the stored ones (the
    /// `login` of whoever runs the engine): only for a root caller. An Engine API caller
    /// of another uid brings its own (`X-Registry-Auth`) or goes anonymous, so the server's
    /// login is not lent to every member of the socket's group.
    pub fn may_use_stored_credentials(&self) -> bool {
        self.caller().uid == 0
    }

    /// `pull`: the admin policy first, then the registry (mirrors for Docker Hub names, from
    /// daemon.json); emits docker's `pull` event (Actor.ID and `name` the familiar reference).
    /// Without credentials in the request, the stored ones for a root caller only.
    pub fn pull_image(
        &self,
        req: &PullRequest,
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Result<PullOutcome, ImageError> {
        let opts = PullOptions {
            platform: platform(req.platform.as_deref())?,
            credentials: req.credentials.clone(),
            no_stored_credentials: !self.may_use_stored_credentials(),
        };
        self.policy_image("pull", &req.reference, false)?;
        let res = client::pull(
            &self.store,
            &self.daemon.registry,
            &req.reference,
            &opts,
            progress,
        )?;
        let name = ImageRef::parse(&req.reference)
            .map(|r| r.familiar())
            .unwrap_or_else(|_| req.reference.clone());
        self.emit("image", "pull", &name, &[("name", name.clone())]);
        Ok(res)
    }

    /// The image a `run`/`create` is about to use, per `--pull`: present → nothing;
    /// missing (or `always`) → pulled as [`Engine::pull_image`] pulls (the admin policy
    /// first), after docker's `Unable to find image 'X' locally` line when it was missing;
    /// `never` and missing → the store's "No such image". The Engine API's create does not
    /// call this: there, as with docker, the client pulls after a 404.
    pub fn ensure_image(
        &self,
        reference: &str,
        policy: PullPolicy,
        platform: Option<&str>,
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Result<EnsureOutcome, ImageError> {
        let present = match self.store.resolve_image(reference) {
            Ok(_) => true,
            Err(wharf_store::StoreError::ImageNotFound(_)) => false,
            Err(e) => return Err(e.into()),
        };
        match (policy, present) {
            (PullPolicy::Missing, true) | (PullPolicy::Never, true) => {
                return Ok(EnsureOutcome::Present)
            }
            (PullPolicy::Never, false) => {
                return Err(wharf_store::StoreError::ImageNotFound(reference.to_string()).into())
            }
            (PullPolicy::Missing, false) => {
                // docker names the reference with its tag (`busybox:latest`); an id or a
                // string that is no reference is simply not there
                let Ok(r) = ImageRef::parse(reference) else {
                    return Err(
                        wharf_store::StoreError::ImageNotFound(reference.to_string()).into(),
                    );
                };
                progress(Progress::Line(&format!(
                    "Unable to find image '{}' locally",
                    r.familiar()
                )));
            }
            (PullPolicy::Always, _) => {}
        }
        let res = self.pull_image(
            &PullRequest {
                reference: reference.to_string(),
                platform: platform.map(str::to_string),
                credentials: None,
            },
            progress,
        )?;
        Ok(EnsureOutcome::Pulled(res))
    }

    /// `push`: the admin policy first; `out` receives docker's lines. Returns the manifest
    /// digest the registry holds.
    pub fn push_image(
        &self,
        req: &PushRequest,
        out: &(dyn Fn(&str) + Sync),
    ) -> Result<Digest, ImageError> {
        self.policy_image("push", &req.reference, true)?;
        let opts = client::PushOptions {
            credentials: req.credentials.clone(),
            no_stored_credentials: !self.may_use_stored_credentials(),
        };
        let digest = client::push_with(
            &self.store,
            &self.daemon.registry,
            &req.reference,
            &opts,
            out,
        )?;
        Ok(digest)
    }

    /// The Engine API's `POST /auth`: checks the credentials against the registry's `/v2/`
    /// (as `login` does) without storing them: the client keeps them and sends them with
    /// each pull or push. Returns the registry host.
    pub fn check_login(&self, req: &LoginRequest) -> Result<String, ImageError> {
        let host = server_host(req.server.as_deref());
        client::check_login(&self.daemon.registry, &host, &req.username, &req.password)?;
        Ok(host)
    }

    /// `login`: checks the credentials against the registry's `/v2/` and stores them
    /// (credential helper or config.json).
    pub fn login(&self, req: &LoginRequest) -> Result<LoginOutcome, ImageError> {
        let host = server_host(req.server.as_deref());
        let stored = client::login_to(&self.daemon.registry, &host, &req.username, &req.password)?;
        Ok(LoginOutcome { host, stored })
    }

    /// `logout`: removes the stored credentials of a registry.
    pub fn logout(&self, req: &LogoutRequest) -> Result<LogoutOutcome, ImageError> {
        let host = server_host(req.server.as_deref());
        let key = client::config::auth_key(&host);
        let removed = client::config::remove_credentials(&host)?;
        Ok(LogoutOutcome { key, removed })
    }

    /// `load`: every digest verified before anything is visible; then the admin policy judges
    /// the names the archive brought (a refused one is undone). Emits `load` per image (and
    /// `tag` per name kept).
    pub fn load_images(
        &self,
        req: &LoadRequest,
        input: &mut dyn Read,
    ) -> Result<Vec<LoadedImage>, ImageError> {
        let opts = LoadOptions {
            platform: platform(req.platform.as_deref())?,
            max_bytes: None,
        };
        let loaded = self.store.load(input, &opts)?;
        for img in &loaded {
            let id = img.id.to_string();
            self.emit("image", "load", &id, &[("name", id.clone())]);
        }
        self.policy_loaded("load", &loaded)?;
        for img in &loaded {
            for t in &img.tags {
                self.emit_image_tag(&img.id, t);
            }
        }
        Ok(loaded)
    }

    /// `save`: a docker-archive or OCI layout tar of the named images, streamed.
    pub fn save_images(&self, req: &SaveRequest, out: SaveOutput<'_>) -> Result<(), ImageError> {
        let opts = SaveOptions {
            format: if req.format.is_empty() {
                ArchiveFormat::Docker
            } else {
                req.format.parse::<ArchiveFormat>()?
            },
            platform: platform(req.platform.as_deref())?,
        };
        match out {
            SaveOutput::Writer(w) => {
                let mut w = std::io::BufWriter::with_capacity(1 << 20, w);
                self.store.save(&req.images, &opts, &mut w)?;
                w.flush().map_err(ImageError::WriteArchive)?;
                Ok(())
            }
            SaveOutput::File(path) => {
                let tmp = path.with_file_name(format!(
                    ".{}.wharf-tmp",
                    path.file_name()
                        .map(|n| n.to_string_lossy())
                        .unwrap_or_default()
                ));
                let res = (|| {
                    let f = std::fs::File::create(&tmp)
                        .map_err(|e| ImageError::io("failed to save image: create", &tmp, e))?;
                    self.store.save(
                        &req.images,
                        &opts,
                        std::io::BufWriter::with_capacity(1 << 20, f),
                    )?;
                    std::fs::rename(&tmp, &path)
                        .map_err(|e| ImageError::io("failed to save image: rename", &path, e))
                })();
                if res.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
                res
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_hosts() {
        assert_eq!(server_host(None), "docker.io");
        assert_eq!(
            server_host(Some("https://index.docker.io/v1/")),
            "docker.io"
        );
        assert_eq!(server_host(Some("http://r.local:5000/x")), "r.local:5000");
    }

    #[test]
    fn login_request_debug_hides_the_password() {
        let r = LoginRequest {
            server: None,
            username: "alice".into(),
            password: "s3cret".into(),
        };
        let d = format!("{r:?}");
        assert!(d.contains("alice") && !d.contains("s3cret"), "{d}");
    }
}
