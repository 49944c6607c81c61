//! The subset of the OCI image spec (and its Docker schema2 twin) that wharf reads and writes,
//! as plain serde structs. Unknown fields are preserved where round-tripping matters
//! (`extra`), so an image config written by another tool keeps its digest when re-serialised
//! is NOT attempted: blobs are always stored and served byte-for-byte, these structs are only
//! for reading them and for building new ones.

use crate::digest::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const MEDIA_DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const MEDIA_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthConfig {
    #[serde(rename = "Test", default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(rename = "Interval", default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(rename = "Timeout", default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(
        rename = "StartPeriod",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub start_period: Option<i64>,
    #[serde(rename = "Retries", default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
}

/// The `config` object of an image config: the defaults a container starts from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunConfig {
    #[serde(rename = "User", default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(
        rename = "ExposedPorts",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(rename = "Env", default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(
        rename = "Entrypoint",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(rename = "Volumes", default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(
        rename = "WorkingDir",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub working_dir: Option<String>,
    #[serde(rename = "Labels", default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(
        rename = "StopSignal",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stop_signal: Option<String>,
    #[serde(
        rename = "Healthcheck",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub healthcheck: Option<HealthConfig>,
    /// `ONBUILD` triggers, run by a build that uses this image as its base.
    #[serde(rename = "OnBuild", default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    /// `SHELL`: the shell form's shell for a build FROM this image (docker's field).
    #[serde(rename = "Shell", default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

/// An image config blob (`application/vnd.oci.image.config.v1+json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default)]
    pub config: RunConfig,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
}

/// Host architecture in OCI/GOARCH spelling.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// What a manifest-like document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    Manifest,
    Index,
}

impl DocumentKind {
    /// The kind a media type names (`None`: neither a manifest nor an index type).
    pub fn of_media_type(mt: &str) -> Option<DocumentKind> {
        match mt {
            MEDIA_OCI_MANIFEST | MEDIA_DOCKER_MANIFEST => Some(DocumentKind::Manifest),
            MEDIA_OCI_INDEX | MEDIA_DOCKER_LIST => Some(DocumentKind::Index),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            DocumentKind::Manifest => "manifest",
            DocumentKind::Index => "index",
        }
    }
}

/// A manifest or index that is ambiguous or contradicts what refers to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("not a JSON object: {0}")]
    Json(String),
    #[error("ambiguous document: it has both manifests and layers or config")]
    Ambiguous,
    #[error("expected {expected} but the document is {found}")]
    KindMismatch {
        expected: &'static str,
        found: &'static str,
    },
    #[error("platform {declared} of the descriptor does not match the image config's {actual}")]
    PlatformMismatch { declared: String, actual: String },
}

#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    layers: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    config: Option<serde::de::IgnoredAny>,
}

/// Classifies a manifest or index document, refusing what containerd refuses: a document with
/// both `manifests` and `layers`/`config`, a `mediaType` field that names the other kind than
/// its fields, and a document whose kind contradicts `declared` (the referring descriptor's or
/// the response's media type). `None`: nothing says what it is (the caller's media-type check
/// reports it). The one check every pull, load and bundle apply goes through.
pub fn document_kind(
    bytes: &[u8],
    declared: Option<&str>,
) -> Result<Option<DocumentKind>, DocumentError> {
    let p: Probe = serde_json::from_slice(bytes).map_err(|e| DocumentError::Json(e.to_string()))?;
    let has_index = p.manifests.is_some();
    let has_manifest = p.layers.is_some() || p.config.is_some();
    if has_index && has_manifest {
        return Err(DocumentError::Ambiguous);
    }
    let by_fields = if has_index {
        Some(DocumentKind::Index)
    } else if has_manifest {
        Some(DocumentKind::Manifest)
    } else {
        None
    };
    let by_field_mt = p
        .media_type
        .as_deref()
        .and_then(DocumentKind::of_media_type);
    let by_declared = declared.and_then(DocumentKind::of_media_type);
    let mut kind = None;
    for k in [by_declared, by_field_mt, by_fields].into_iter().flatten() {
        match kind {
            None => kind = Some(k),
            Some(e) if e != k => {
                return Err(DocumentError::KindMismatch {
                    expected: DocumentKind::name(e),
                    found: k.name(),
                })
            }
            Some(_) => {}
        }
    }
    Ok(kind)
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// An image config must be for the platform its index descriptor claims (os and architecture;
/// the variant when both name one, `arm64` `v8` being the default) — containerd's rule; an
/// index saying linux/amd64 over a windows/arm64 config is refused, not run.
pub fn check_config_platform(declared: &Platform, cfg: &ImageConfig) -> Result<(), DocumentError> {
    let norm = |arch: &str, v: Option<&str>| -> Option<String> {
        match (arch, v) {
            ("arm64", Some("v8")) | (_, Some("")) | (_, None) => None,
            (_, Some(v)) => Some(v.to_string()),
        }
    };
    let dv = norm(&declared.architecture, declared.variant.as_deref());
    let cv = norm(&cfg.architecture, cfg.variant.as_deref());
    let variant_ok = dv.is_none() || cv.is_none() || dv == cv;
    if declared.os != cfg.os || declared.architecture != cfg.architecture || !variant_ok {
        return Err(DocumentError::PlatformMismatch {
            declared: declared.to_string(),
            actual: Platform {
                os: cfg.os.clone(),
                architecture: cfg.architecture.clone(),
                variant: cfg.variant.clone(),
            }
            .to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_roundtrip_docker_field_names() {
        let j = r#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]}}"#;
        let c: ImageConfig = serde_json::from_str(j).unwrap();
        assert_eq!(c.config.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(c.rootfs.diff_ids.len(), 1);
        let out = serde_json::to_string(&c).unwrap();
        assert!(out.contains("\"Cmd\":[\"sh\"]"));
    }

    #[test]
    fn manifest_rejects_bad_digest() {
        let j = r#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:../../x","size":1},"layers":[]}"#;
        assert!(serde_json::from_str::<Manifest>(j).is_err());
    }

    #[test]
    fn ambiguous_and_mismatched_documents() {
        let man = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}"#;
        let idx = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(document_kind(man, None), Ok(Some(DocumentKind::Manifest)));
        assert_eq!(
            document_kind(man, Some(MEDIA_OCI_MANIFEST)),
            Ok(Some(DocumentKind::Manifest))
        );
        assert_eq!(
            document_kind(idx, Some(MEDIA_DOCKER_LIST)),
            Ok(Some(DocumentKind::Index))
        );
        assert_eq!(
            document_kind(idx, Some("application/json")),
            Ok(Some(DocumentKind::Index))
        );
        let both = br#"{"schemaVersion":2,"manifests":[],"layers":[]}"#;
        assert_eq!(document_kind(both, None), Err(DocumentError::Ambiguous));
        let both = br#"{"schemaVersion":2,"manifests":[],"config":{}}"#;
        assert_eq!(
            document_kind(both, Some(MEDIA_OCI_INDEX)),
            Err(DocumentError::Ambiguous)
        );
        let e = document_kind(man, Some(MEDIA_OCI_INDEX)).unwrap_err();
        assert_eq!(e.to_string(), "expected index but the document is manifest");
        let lying = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","layers":[]}"#;
        assert!(matches!(
            document_kind(lying, None),
            Err(DocumentError::KindMismatch { .. })
        ));
        assert_eq!(document_kind(b"{}", None), Ok(None));
        assert!(document_kind(b"[1]", None).is_err());
    }

    #[test]
    fn config_platform_must_match_descriptor() {
        let cfg = |os: &str, arch: &str, v: Option<&str>| ImageConfig {
            os: os.into(),
            architecture: arch.into(),
            variant: v.map(Into::into),
            ..Default::default()
        };
        let p = |os: &str, arch: &str, v: Option<&str>| Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: v.map(Into::into),
        };
        let e = check_config_platform(&p("linux", "amd64", None), &cfg("windows", "arm64", None))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "platform linux/amd64 of the descriptor does not match the image config's windows/arm64"
        );
        assert!(
            check_config_platform(&p("linux", "amd64", None), &cfg("linux", "amd64", None)).is_ok()
        );
        assert!(check_config_platform(
            &p("linux", "arm64", Some("v8")),
            &cfg("linux", "arm64", None)
        )
        .is_ok());
        assert!(
            check_config_platform(&p("linux", "arm", Some("v7")), &cfg("linux", "arm", None))
                .is_ok()
        );
        assert!(check_config_platform(
            &p("linux", "arm", Some("v7")),
            &cfg("linux", "arm", Some("v6"))
        )
        .is_err());
        assert!(
            check_config_platform(&p("linux", "amd64", None), &cfg("linux", "arm64", None))
                .is_err()
        );
    }
}
