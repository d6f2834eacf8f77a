//! The S3-compatible server that `scripts/s3-test-server run` starts (`TEST_S3_*`), as this
//! crate's tests and the end-to-end tests reach it.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

use crate::S3Config;

/// A bucket prefix of a test's own on the test S3 server.
pub struct TestS3 {
    pub config: S3Config,
    /// The server's data directory (every bucket), to scan for what must not be in clear.
    pub data: PathBuf,
    /// Where the server keeps this prefix's objects.
    pub objects: PathBuf,
}

impl TestS3 {
    /// `None` when no S3 server is configured (the caller skips its test), except under
    /// `CI=true`, where S3 coverage must not vanish silently. `test` names the test in the skip
    /// message and starts the prefix.
    pub fn from_env(test: &str) -> Option<Self> {
        let Some(url) = std::env::var("TEST_S3_URL").ok().filter(|u| !u.is_empty()) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but TEST_S3_URL is not set: run the tests under scripts/s3-test-server run"
            );
            eprintln!("{test} on S3: skipped, TEST_S3_URL is not set (run under scripts/s3-test-server run)");
            return None;
        };
        let data = PathBuf::from(std::env::var("TEST_S3_DIR").expect("TEST_S3_DIR with TEST_S3_URL"));
        let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        let bucket = env("TEST_S3_BUCKET", "rekisteri-test");
        std::fs::create_dir_all(data.join(&bucket)).unwrap();
        let prefix = format!("{test}-{}", uuid::Uuid::new_v4().simple());
        let objects = data.join(&bucket).join(&prefix);
        let config = S3Config {
            endpoint: url,
            bucket,
            region: "us-east-1".to_owned(),
            access_key_id: env("TEST_S3_ACCESS_KEY", "rekisteri-test"),
            secret_access_key: env("TEST_S3_SECRET_KEY", "rekisteri-test-secret"),
            allow_http: true,
            prefix: Some(prefix),
        };
        Some(Self { config, data, objects })
    }
}
