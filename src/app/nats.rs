//! Start-up step: NATS. Our own nats-server or an existing one (its URL list, credentials,
//! TLS CA), and this data dir's instance ID, which names the instance's own job queue on a
//! shared server and its share of the shared budget.

use std::path::Path;

use super::AppError;
use crate::bus::embedded::{EmbeddedNats, EmbeddedNatsConfig};
use crate::config::{NatsAuth, NatsMode, Settings};

/// NATS as configured: our own nats-server, or an existing one. Returns the server we run
/// (if any), its URL and a connected client. A refused login or TLS handshake fails here, at
/// once, naming the URL: the client does not retry an initial connect.
pub(super) async fn connect(
    settings: &Settings,
) -> Result<(Option<EmbeddedNats>, String, async_nats::Client), AppError> {
    let base = async_nats::ConnectOptions::new().name("dota-orchestrator");
    let (embedded, url, options, tls) = match &settings.nats {
        NatsMode::Embedded { conf, port } => {
            let server = EmbeddedNats::start_with_server_bin(
                EmbeddedNatsConfig {
                    conf: conf.clone(),
                    store_dir: settings.data_dir.join("nats"),
                    port: *port,
                },
                settings.nats_server_bin.as_deref(),
            )
            .await?;
            let url = server.url().to_string();
            (Some(server), url, base, false)
        }
        NatsMode::External { url, auth, tls_ca } => {
            let tls = tls_ca.is_some() || url.split(',').any(|u| u.trim().starts_with("tls://"));
            let options = external_options(base, auth, tls_ca.as_deref()).await?;
            (None, url.clone(), options.require_tls(tls), tls)
        }
    };
    let client = options
        .connect(server_addrs(&url)?)
        .await
        .map_err(|source| AppError::NatsConnect {
            hint: connect_hint(source.kind(), tls),
            url: url.clone(),
            source,
        })?;
    Ok((embedded, url, client))
}

/// Name of the file in the data dir that holds this instance's ID.
pub const INSTANCE_ID_FILE: &str = "instance-id";

/// This data dir's instance ID (12 lowercase hex digits), made and kept in
/// [`INSTANCE_ID_FILE`] on the first start. It names the instance's own job queue on a shared
/// NATS server, so it must stay the same across restarts: queued work survives them.
pub(super) fn instance_id(data_dir: &Path) -> Result<String, AppError> {
    let path = data_dir.join(INSTANCE_ID_FILE);
    let error = |reason: String| AppError::InstanceId {
        path: path.clone(),
        reason,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim();
            let valid = (1..=32).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
            if valid {
                Ok(id.to_string())
            } else {
                Err(error(format!(
                    "{id:?} is not 1 to 32 lowercase letters and digits; remove the file to get a new one"
                )))
            }
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
            std::fs::write(&path, format!("{id}\n")).map_err(|e| error(e.to_string()))?;
            tracing::info!(%id, path = %path.display(), "new instance ID");
            Ok(id)
        }
        Err(err) => Err(error(err.to_string())),
    }
}

/// The servers of `--nats-url`: one URL, or a comma-separated list of a cluster's nodes (the
/// client picks one and fails over to the others).
fn server_addrs(url: &str) -> Result<Vec<async_nats::ServerAddr>, AppError> {
    url.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| AppError::NatsUrl {
            url: url.to_string(),
            source,
        })
}

/// Credentials and trusted CA for an external server. The CA file is checked here so that a
/// wrong path is reported as such, not as a failed handshake.
async fn external_options(
    options: async_nats::ConnectOptions,
    auth: &NatsAuth,
    tls_ca: Option<&Path>,
) -> Result<async_nats::ConnectOptions, AppError> {
    let options = match auth {
        NatsAuth::None => options,
        NatsAuth::Token(token) => options.token(token.0.clone()),
        NatsAuth::Creds(path) => {
            options
                .credentials_file(path)
                .await
                .map_err(|source| AppError::NatsFile {
                    what: "credentials file (--nats-creds)",
                    path: path.to_path_buf(),
                    source,
                })?
        }
    };
    let options = match tls_ca {
        Some(ca) => {
            std::fs::metadata(ca).map_err(|source| AppError::NatsFile {
                what: "TLS CA certificate (--nats-tls-ca)",
                path: ca.to_path_buf(),
                source,
            })?;
            options.add_root_certificates(ca.to_path_buf())
        }
        None => options,
    };
    Ok(options)
}

/// What to check when the initial connect fails, by the client's reason. An untrusted server
/// certificate surfaces as an I/O error, hence the TLS hint for any failure of a TLS connect.
fn connect_hint(kind: async_nats::ConnectErrorKind, tls: bool) -> &'static str {
    use async_nats::ConnectErrorKind as Kind;
    match kind {
        Kind::AuthorizationViolation | Kind::Authentication => {
            "the server refused our credentials; check --nats-token or --nats-creds"
        }
        _ if tls => {
            "check that the server runs with TLS, the URL is right and --nats-tls-ca is the CA \
             that signed the server's certificate"
        }
        _ => "check that the server runs and the URL is right",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_instance_id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let id = instance_id(dir.path()).unwrap();
        assert_eq!(id.len(), 12);
        assert_eq!(
            instance_id(dir.path()).unwrap(),
            id,
            "the same across restarts"
        );
        std::fs::write(dir.path().join(INSTANCE_ID_FILE), "Not/Valid\n").unwrap();
        let err = instance_id(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("instance-id") && err.contains("remove the file"),
            "{err}"
        );
    }

    #[test]
    fn a_nats_url_may_list_several_nodes() {
        let addrs =
            server_addrs("nats://127.0.0.1:4222, nats://127.0.0.1:4223,127.0.0.1:4224").unwrap();
        let ports: Vec<u16> = addrs.iter().map(|a| a.port()).collect();
        assert_eq!(ports, [4222, 4223, 4224]);
        assert_eq!(server_addrs("tls://nats.example:4443").unwrap().len(), 1);
        let err = server_addrs("nats://127.0.0.1:4222,http://[::1").unwrap_err();
        assert!(err.to_string().contains("invalid --nats-url"), "{err}");
    }
}
