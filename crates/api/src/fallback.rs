//! Answers requests no route took: 405 with `Allow` when the path exists under other methods,
//! 404 otherwise. The table comes from the generated OpenAPI document, so it always matches the
//! routes actually registered.

use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use utoipa::openapi::OpenApi;

use crate::problem::{ApiError, Problem, ProblemType};

/// The OAuth 2.0 token endpoint, whose errors are RFC 6749's, not problem documents.
const OAUTH_TOKEN_PATH: &str = "/v1/auth/token";

pub struct RouteTable {
    routes: Vec<(Template, Vec<Method>)>,
    /// Operations reachable without credentials: those whose OpenAPI security is empty.
    public: Vec<(Template, Method)>,
    /// The media types each operation's successful answers come in, as documented.
    produces: Vec<(Template, Method, Vec<String>)>,
}

/// A path template of the document (`/v1/registrars/{rid}/clients/{id}`) or of a route outside
/// it (`/docs/{_:.*}`), matched as actix's router matches it: a literal segment exactly, a
/// `{name}` one non-empty segment, a last `{name:.*}` the rest of the path. Segment by segment,
/// without a regular expression: actix's `ResourceDef` compiles one per template, some 34 KB
/// each, and the table holds a template per path and per operation (PL-16: 7 MB of an idle
/// server's heap).
#[derive(Debug)]
pub struct Template {
    segments: Vec<Segment>,
    /// How many segments are variables: fewer is more specific.
    variables: usize,
}

#[derive(Debug)]
enum Segment {
    Literal(String),
    Variable,
    /// The rest of the path, possibly empty (`{name:.*}`, last).
    Rest,
}

impl Template {
    fn new(pattern: &str) -> Self {
        let segments: Vec<Segment> = pattern
            .split('/')
            .map(
                |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(variable) if variable.ends_with(":.*") => Segment::Rest,
                    Some(_) => Segment::Variable,
                    None => Segment::Literal(segment.to_owned()),
                },
            )
            .collect();
        let variables = segments.iter().filter(|s| !matches!(s, Segment::Literal(_))).count();
        Self { segments, variables }
    }

    fn is_match(&self, path: &str) -> bool {
        let mut parts = path.split('/');
        for segment in &self.segments {
            let part = parts.next();
            match (segment, part) {
                (Segment::Rest, Some(_)) => return true,
                (Segment::Literal(literal), Some(part)) if part == literal => {}
                (Segment::Variable, Some(part)) if !part.is_empty() => {}
                _ => return false,
            }
        }
        parts.next().is_none()
    }
}

/// Whether a request may go ahead without credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    Authenticated,
    /// No such route: routing answers 404 or 405.
    NoRoute,
}

impl RouteTable {
    pub fn from_openapi(doc: &OpenApi, extra: &[(&str, Method)]) -> Self {
        let mut routes: Vec<(Template, Vec<Method>)> = Vec::new();
        let mut public = Vec::new();
        let mut produces = Vec::new();
        for (path, item) in &doc.paths.paths {
            let operations = [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::PATCH, &item.patch),
                (Method::DELETE, &item.delete),
            ];
            let mut methods = Vec::new();
            for (method, operation) in operations {
                if let Some(operation) = operation {
                    if crate::contract::is_public(operation) {
                        public.push((Template::new(path), method.clone()));
                    }
                    // The token endpoint answers as RFC 6749 says, whatever `Accept` asks.
                    let types: Vec<String> = if path == OAUTH_TOKEN_PATH {
                        Vec::new()
                    } else {
                        operation
                            .responses
                            .responses
                            .iter()
                            .filter(|(status, _)| status.starts_with('2'))
                            .filter_map(|(_, response)| match response {
                                utoipa::openapi::RefOr::T(response) => Some(response.content.keys().cloned()),
                                utoipa::openapi::RefOr::Ref(_) => None,
                            })
                            .flatten()
                            .collect()
                    };
                    produces.push((Template::new(path), method.clone(), types));
                    methods.push(method);
                }
            }
            routes.push((Template::new(path), methods));
        }
        for (path, method) in extra {
            routes.push((Template::new(path), vec![method.clone()]));
            public.push((Template::new(path), method.clone()));
        }
        Self {
            routes,
            public,
            produces,
        }
    }

    /// Whether an `Accept` header admits one of the media types the operation answers in
    /// (RFC 9110 §12.5.1: `*/*`, `type/*` or the type itself, a range with `q=0` excluded). An
    /// operation that answers without a body, or one not in the document, admits anything.
    pub fn accepts(&self, method: &Method, path: &str, accept: &str) -> bool {
        let Some((_, _, types)) = self
            .produces
            .iter()
            .find(|(definition, m, _)| m == method && definition.is_match(path))
        else {
            return true;
        };
        if types.is_empty() {
            return true;
        }
        accept.split(',').any(|range| {
            let mut parts = range.split(';');
            let media_range = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            !refused
                && types.iter().any(|produced| {
                    media_range == "*/*"
                        || media_range == *produced
                        || media_range
                            .strip_suffix("/*")
                            .is_some_and(|kind| produced.split('/').next() == Some(kind))
                })
        })
    }

    /// Every operation needs credentials unless the OpenAPI document says it is public, so an
    /// endpoint cannot forget to require them.
    pub fn access(&self, method: &Method, path: &str) -> Access {
        if self
            .public
            .iter()
            .any(|(definition, m)| m == method && definition.is_match(path))
        {
            return Access::Public;
        }
        // Only the most specific paths count: `PATCH …/clients/search` must not reach the
        // handler of `…/clients/{id}`.
        if self.allowed(path).contains(method) {
            Access::Authenticated
        } else {
            Access::NoRoute
        }
    }

    /// Whether the path exists, most specifically, under other methods only: the request must
    /// be answered 405 before a less specific template's handler takes it.
    pub fn wrong_method(&self, method: &Method, path: &str) -> bool {
        let allowed = self.allowed(path);
        !allowed.is_empty() && !allowed.contains(method) && *method != Method::OPTIONS
    }

    /// The methods of the most specific paths that match: a literal segment beats a template
    /// (`…/clients/search` is not `…/clients/{id}`), as the document lists them.
    fn allowed(&self, path: &str) -> Vec<Method> {
        // One pass (every request's middleware asks): a template with more variables than the
        // most specific match so far is not even compared.
        let mut fewest = usize::MAX;
        let mut methods: Vec<Method> = Vec::new();
        for (definition, route_methods) in &self.routes {
            if definition.variables > fewest || !definition.is_match(path) {
                continue;
            }
            if definition.variables < fewest {
                fewest = definition.variables;
                methods.clear();
            }
            for method in route_methods {
                if !methods.contains(method) {
                    methods.push(method.clone());
                }
            }
        }
        methods
    }
}

/// Documents the 406 that the request middleware answers, on every operation whose successful
/// answers have a body ([`RouteTable::accepts`]).
pub fn document(mut doc: OpenApi) -> OpenApi {
    for (path, item) in doc.paths.paths.iter_mut() {
        if path == OAUTH_TOKEN_PATH {
            continue;
        }
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            let has_body = operation.responses.responses.iter().any(|(status, response)| {
                status.starts_with('2') && matches!(response, utoipa::openapi::RefOr::T(r) if !r.content.is_empty())
            });
            if has_body {
                operation
                    .responses
                    .responses
                    .entry("406".to_owned())
                    .or_insert_with(|| {
                        crate::problem::documented_problem("No representation of the answer matches `Accept`")
                    });
            }
        }
    }
    doc
}

pub async fn fallback(req: HttpRequest, table: web::Data<RouteTable>) -> Result<HttpResponse, ApiError> {
    method_not_allowed(&req, &table)
}

/// 404 when no path matches; otherwise 405 with the most specific path's methods in `Allow`.
pub fn method_not_allowed(req: &HttpRequest, table: &RouteTable) -> Result<HttpResponse, ApiError> {
    let allowed = table.allowed(req.path());
    if allowed.is_empty() {
        return Err(ApiError::NotFound);
    }
    let allow = allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
    let mut problem = Problem::new(ProblemType::MethodNotAllowed);
    problem.detail = Some(format!("{} is not supported here; use {allow}.", req.method()));
    let mut response = problem.response();
    if let Ok(value) = HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::Template;

    /// The table's templates match as actix's router does, for every template of the document
    /// and the routes outside it, on paths made from each of them.
    #[test]
    fn templates_match_as_actix_does() {
        let doc = crate::openapi();
        let mut patterns: Vec<String> = doc.paths.paths.keys().cloned().collect();
        patterns.extend(crate::UNDOCUMENTED_ROUTES.iter().map(|(path, _)| (*path).to_owned()));
        let mut paths: Vec<String> = vec![
            "/".into(),
            "".into(),
            "/docs".into(),
            "/docs/".into(),
            "/docs/a/b.js".into(),
        ];
        for pattern in &patterns {
            let concrete = pattern.replace("{_:.*}", "x/y").replace('{', "x").replace('}', "");
            paths.push(concrete.clone());
            paths.push(format!("{concrete}/"));
            paths.push(format!("{concrete}/more"));
            paths.push(concrete.replace("/x", "/"));
            paths.push(pattern.replace("{_:.*}", ""));
            paths.push(
                concrete
                    .rsplit_once('/')
                    .map_or(String::new(), |(head, _)| head.to_owned()),
            );
        }
        for pattern in &patterns {
            let ours = Template::new(pattern);
            let actix = actix_router::ResourceDef::new(pattern.as_str());
            for path in &paths {
                assert_eq!(ours.is_match(path), actix.is_match(path), "{pattern} on {path}");
            }
        }
    }

    /// The modules may register their routes in any order (`crate::configure` puts the hot
    /// ones first): actix takes the first route that matches a request, and no two operations
    /// of one method match one path, so the order never picks another handler.
    #[test]
    fn pl_12_no_two_operations_of_one_method_match_one_path() {
        let doc = crate::openapi();
        let operations: Vec<(&String, &str)> = doc
            .paths
            .paths
            .iter()
            .flat_map(|(path, item)| {
                [
                    (item.get.is_some(), "GET"),
                    (item.post.is_some(), "POST"),
                    (item.put.is_some(), "PUT"),
                    (item.patch.is_some(), "PATCH"),
                    (item.delete.is_some(), "DELETE"),
                ]
                .into_iter()
                .filter(|(present, _)| *present)
                .map(move |(_, method)| (path, method))
            })
            .collect();
        // Two templates share a path when, segment by segment, each pair is equal or either is
        // a variable.
        let share_a_path = |a: &str, b: &str| {
            let (a, b): (Vec<&str>, Vec<&str>) = (a.split('/').collect(), b.split('/').collect());
            a.len() == b.len()
                && a.iter()
                    .zip(&b)
                    .all(|(x, y)| x == y || x.starts_with('{') || y.starts_with('{'))
        };
        for (i, (path, method)) in operations.iter().enumerate() {
            for (other, other_method) in &operations[i + 1..] {
                assert!(
                    method != other_method || !share_a_path(path, other),
                    "{method} {path} and {other} match the same paths"
                );
            }
        }
        assert!(operations.len() > 100, "only {} operations", operations.len());
    }
}
