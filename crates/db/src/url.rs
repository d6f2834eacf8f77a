use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatabaseUrlError {
    #[error(
        "unsupported database URL scheme '{0}': use sqlite://PATH (e.g. sqlite://data/rekisteri.db) \
         or postgres://USER@HOST/DB"
    )]
    UnsupportedScheme(String),
    #[error("the database URL has no scheme: use sqlite://PATH or postgres://USER@HOST/DB")]
    NoScheme,
    #[error("a sqlite:// URL needs a file path, e.g. sqlite://data/rekisteri.db")]
    EmptySqlitePath,
    #[error("sqlite:// URLs take a plain file path; query parameters and in-memory databases are not supported")]
    SqliteOptions,
}

/// A parsed `DATABASE_URL`. The backend is decided here from the scheme, before anything is
/// opened: SQLite would accept any string as a file name and silently create a new database.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite { path: PathBuf },
    Postgres { url: String },
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, DatabaseUrlError> {
        let url = url.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(DatabaseUrlError::NoScheme);
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => {
                if rest.is_empty() {
                    return Err(DatabaseUrlError::EmptySqlitePath);
                }
                if rest.contains('?') || rest.contains(":memory:") || rest.starts_with("file:") {
                    return Err(DatabaseUrlError::SqliteOptions);
                }
                Ok(Self::Sqlite {
                    path: PathBuf::from(rest),
                })
            }
            "postgres" | "postgresql" => Ok(Self::Postgres { url: url.to_owned() }),
            other => Err(DatabaseUrlError::UnsupportedScheme(other.to_owned())),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite { .. } => Backend::Sqlite,
            Self::Postgres { .. } => Backend::Postgres,
        }
    }

    /// The URL with any password replaced by `****`, for logs and `config check`.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite { path } => format!("sqlite://{}", path.display()),
            Self::Postgres { url } => redact_password(url),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let mut out = format!("{scheme}://");
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            out.push_str(user);
            if userinfo.contains(':') {
                out.push_str(":****");
            }
            out.push('@');
            out.push_str(host);
        }
        None => out.push_str(authority),
    }
    // libpq also takes `password=` as a query parameter.
    let mut params = Vec::new();
    let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
    out.push_str(path);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        if pair.to_ascii_lowercase().starts_with("password=") {
            params.push("password=****".to_owned());
        } else {
            params.push(pair.to_owned());
        }
    }
    if !params.is_empty() {
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pl_5_backend_is_chosen_from_the_scheme() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/rekisteri.db").unwrap(),
            DatabaseUrl::Sqlite {
                path: PathBuf::from("data/rekisteri.db")
            }
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/rekisteri/r.db").unwrap(),
            DatabaseUrl::Sqlite {
                path: PathBuf::from("/var/lib/rekisteri/r.db")
            }
        );
        assert_eq!(
            DatabaseUrl::parse("postgres://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
        assert_eq!(
            DatabaseUrl::parse("postgresql://u@h/db").unwrap().backend(),
            Backend::Postgres
        );
    }

    #[test]
    fn pl_5_other_schemes_are_refused() {
        assert_eq!(
            DatabaseUrl::parse("mysql://x"),
            Err(DatabaseUrlError::UnsupportedScheme("mysql".to_owned()))
        );
        assert_eq!(DatabaseUrl::parse("data/rekisteri.db"), Err(DatabaseUrlError::NoScheme));
        assert_eq!(DatabaseUrl::parse("sqlite://"), Err(DatabaseUrlError::EmptySqlitePath));
        assert_eq!(
            DatabaseUrl::parse("sqlite://:memory:"),
            Err(DatabaseUrlError::SqliteOptions)
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://x.db?mode=ro"),
            Err(DatabaseUrlError::SqliteOptions)
        );
    }

    #[test]
    fn passwords_are_redacted() {
        let url = DatabaseUrl::parse("postgres://app:s3cret@db.example:5432/reg?sslmode=require&password=x").unwrap();
        let shown = url.redacted();
        assert_eq!(
            shown,
            "postgres://app:****@db.example:5432/reg?sslmode=require&password=****"
        );
        assert!(!format!("{url:?} {url}").contains("s3cret"));
        assert_eq!(
            DatabaseUrl::parse("postgres://app@h/db").unwrap().redacted(),
            "postgres://app@h/db"
        );
    }
}
