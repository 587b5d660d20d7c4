//! The serving certificate, following its files on disk.
//!
//! cert-manager and kubelet rotate a certificate by replacing `tls.crt`/`tls.key` (kubelet by
//! swapping a `..data` symlink), so the pair is re-read when either file's metadata changes:
//! modification time, size, device and inode, with symlinks followed. The check runs during a
//! handshake, at most once a second, and by one handshake at a time (the others go on with the
//! current certificate). A changed pair that does not load keeps the previous certificate; the
//! failure is logged once per distinct state of the files, and retried when they change again
//! (a half-written file is completed, the matching key arrives).

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, TryLockError};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::ServeTlsError;
use crate::core::tls::{read_certs, read_key};

/// How often the files are looked at, at most.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);

pub(super) struct ReloadingCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
    watch: Mutex<Watch>,
}

struct Watch {
    checked: Instant,
    /// The files as last loaded or last failed to load.
    seen: [Option<Stamp>; 2],
}

/// What changes when a file is rewritten or replaced; `None` for a file that cannot be stat'ed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    dev: u64,
    ino: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    // `metadata` follows symlinks: a swapped `..data` link shows as another inode.
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

impl ReloadingCert {
    /// Loads the pair now; failing here is failing to start.
    pub(super) fn new(
        cert_file: &Path,
        key_file: &Path,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, ServeTlsError> {
        // Stat before reading: a change after this point is seen by the next check.
        let seen = [stamp(cert_file), stamp(key_file)];
        let key = load(cert_file, key_file, &provider)?;
        Ok(Self {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            provider,
            current: ArcSwap::from_pointee(key),
            watch: Mutex::new(Watch {
                checked: Instant::now(),
                seen,
            }),
        })
    }

    fn check(&self) {
        let mut watch = match self.watch.try_lock() {
            Ok(watch) => watch,
            Err(TryLockError::WouldBlock) => return,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        };
        if watch.checked.elapsed() < CHECK_INTERVAL {
            return;
        }
        watch.checked = Instant::now();
        let seen = [stamp(&self.cert_file), stamp(&self.key_file)];
        if seen == watch.seen {
            return;
        }
        watch.seen = seen;
        match load(&self.cert_file, &self.key_file, &self.provider) {
            Ok(key) => {
                self.current.store(Arc::new(key));
                tracing::info!(cert_file = %self.cert_file.display(), "serving certificate reloaded");
            }
            Err(e) => tracing::warn!(
                cert_file = %self.cert_file.display(),
                key_file = %self.key_file.display(),
                error = %e,
                "serving certificate changed but does not load; still serving the previous one"
            ),
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.check();
        Some(self.current.load_full())
    }
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

/// The chain and its key, checked to belong together.
fn load(
    cert_file: &Path,
    key_file: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, ServeTlsError> {
    let chain = read_certs(cert_file)?;
    let key = read_key(key_file)?;
    let key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| ServeTlsError::invalid(key_file, format!("unusable private key: {e}")))?;
    let certified = CertifiedKey::new(chain, key);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(ServeTlsError::KeyMismatch {
                cert_file: cert_file.display().to_string(),
                key_file: key_file.display().to_string(),
            })
        }
        // The ring keys all expose their public half; "unknown" cannot happen with them.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(e) => Err(ServeTlsError::invalid(
            cert_file,
            format!("first certificate is not usable: {e}"),
        )),
    }
}
