//! The Prometheus HTTP query API over the groups' merged history: `/api/v1/query`,
//! `query_range`, `series`, `labels`, `label/<name>/values`, `metadata`, `query_exemplars`,
//! `status/buildinfo`, `format_query` — GET and form POST, Prometheus' parameters, response
//! shapes and error types (`bad_data` 400, `execution` 422, `timeout` 503, `internal` 500).
//!
//! Spec: <https://prometheus.io/docs/prometheus/2.42/querying/api/>.

use super::engine::eval::{Evaluator, Fetched, Settings};
use super::engine::functions::FUNCTIONS_2_42;
use super::engine::{EvalError, QueryValue};
use super::fetch::{Need, Sources, fetch, needs};
use super::remote_read::Limits;
use crate::config::Query as QueryLimits;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use promql_parser::parser::{self, Expr};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Prometheus' cap on points per series of a range query.
const MAX_POINTS: i64 = 11_000;

/// The query API's state.
pub struct QueryApi {
    pub sources: Sources,
    pub limits: QueryLimits,
    slots: Semaphore,
    /// Queries being answered, by what was asked: an identical query arriving meanwhile (a
    /// dashboard open in several browsers) waits for the same answer instead of fetching and
    /// evaluating again.
    inflight: super::inflight::InFlight<Answer>,
}

/// A finished answer, shareable between identical requests.
#[derive(Clone, Debug)]
struct Answer {
    status: StatusCode,
    body: Bytes,
}

impl Answer {
    async fn from_response(r: Response) -> Answer {
        let status = r.status();
        let body = axum::body::to_bytes(r.into_body(), usize::MAX).await.unwrap_or_default();
        Answer { status, body }
    }

    fn response(&self) -> Response {
        (self.status, [(header::CONTENT_TYPE, "application/json")], self.body.clone()).into_response()
    }
}

impl QueryApi {
    pub fn new(sources: Sources, limits: QueryLimits) -> Self {
        let slots = Semaphore::new(limits.max_concurrency.max(1));
        QueryApi { sources, limits, slots, inflight: Default::default() }
    }
}

/// `holt_winters` (Prometheus 3 renamed it) is known to promql-parser only when registered.
pub(crate) fn register_2_42_functions() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use promql_parser::parser::value::ValueType;
        let hw = parser::Function::new(
            "holt_winters",
            vec![ValueType::Matrix, ValueType::Scalar, ValueType::Scalar],
            0,
            ValueType::Vector,
            false,
        );
        // Fails only when the parser already knows it, which is fine too.
        let _ = parser::register_extra_functions(vec![hw]);
    });
}

/// The routes, to merge into promfed's router.
pub fn routes<S: Clone + Send + Sync + 'static>(api: Arc<QueryApi>) -> Router<S> {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/metadata", get(|| async { success(json!({}), &[]) }))
        .route("/api/v1/query_exemplars", get(exemplars).post(exemplars))
        .route("/api/v1/format_query", get(format_query).post(format_query))
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/alerts", get(alerts))
        .with_state(api)
}

/// An API error: Prometheus' `errorType` and status.
#[derive(Debug)]
pub struct ApiError {
    kind: &'static str,
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn bad_data(message: impl Into<String>) -> Self {
        ApiError { kind: "bad_data", status: StatusCode::BAD_REQUEST, message: message.into() }
    }
}

impl From<EvalError> for ApiError {
    fn from(e: EvalError) -> Self {
        let (kind, status) = match &e {
            EvalError::BadData(_) => ("bad_data", StatusCode::BAD_REQUEST),
            EvalError::Execution(_) | EvalError::TooManySamples => ("execution", StatusCode::UNPROCESSABLE_ENTITY),
            EvalError::Timeout => ("timeout", StatusCode::SERVICE_UNAVAILABLE),
            // Prometheus' 499 "client closed request": nobody reads it.
            EvalError::Canceled => ("canceled", StatusCode::from_u16(499).expect("a valid status")),
        };
        ApiError { kind, status, message: e.to_string() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"status": "error", "errorType": self.kind, "error": self.message});
        (self.status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
    }
}

fn success(data: Value, warnings: &[String]) -> Response {
    let mut body = json!({"status": "success", "data": data});
    if !warnings.is_empty() {
        body["warnings"] = json!(warnings);
    }
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// The request's parameters: the query string, and a form body on POST (as Prometheus reads
/// them, and Grafana sends them).
struct Params(Vec<(String, String)>);

/// The largest form body read.
const MAX_FORM: usize = 8 << 20;

impl<S: Send + Sync> axum::extract::FromRequest<S> for Params {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, _: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let raw = parts.uri.query().map(str::to_owned);
        let body = axum::body::to_bytes(body, MAX_FORM)
            .await
            .map_err(|e| ApiError::bad_data(format!("cannot read the request body: {e}")).into_response())?;
        Ok(Params(params(&parts.method, &parts.headers, raw, &body)))
    }
}

fn params(method: &Method, headers: &HeaderMap, raw: Option<String>, body: &Bytes) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if method == Method::POST && form {
        out.extend(form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())));
    }
    out
}

fn param<'a>(p: &'a [(String, String)], name: &str) -> Option<&'a str> {
    p.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

/// A time parameter: Unix seconds (fractions allowed) or RFC 3339.
fn parse_time(name: &str, s: &str) -> Result<i64, ApiError> {
    if let Ok(f) = s.parse::<f64>()
        && f.is_finite()
    {
        return Ok((f * 1000.0).round() as i64);
    }
    if let Ok(t) = httpdate_rfc3339(s) {
        return Ok(t);
    }
    Err(ApiError::bad_data(format!("invalid parameter {name:?}: cannot parse {s:?} to a valid timestamp")))
}

/// RFC 3339 (`2026-12-03T06:00:00Z`, `…+01:00`, fractions) to milliseconds.
fn httpdate_rfc3339(s: &str) -> Result<i64, ()> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(());
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<i64>().ok()).ok_or(());
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        let padded = format!("{digits:0<3}");
        frac_ms = padded[..3].parse().map_err(|_| ())?;
    }
    let offset_s = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let o = oh * 3600 + om * 60;
            if sign == b'+' { o } else { -o }
        }
        _ => return Err(()),
    };
    let days = super::engine::functions::days_from_civil(y, mo, d);
    Ok((days * 86_400 + h * 3600 + mi * 60 + se - offset_s) * 1000 + frac_ms)
}

/// A duration parameter: seconds as a float, or a Prometheus duration (`15s`, `1m30s`).
fn parse_duration(name: &str, s: &str) -> Result<i64, ApiError> {
    if let Ok(f) = s.parse::<f64>()
        && f.is_finite()
    {
        return Ok((f * 1000.0).round() as i64);
    }
    if let Ok(d) = crate::config::units::PromDuration::parse(s) {
        return Ok(d.0.as_millis() as i64);
    }
    Err(ApiError::bad_data(format!("invalid parameter {name:?}: cannot parse {s:?} to a valid duration")))
}

/// Parses `query` as PromQL 2.42: promql-parser's grammar, minus what 2.42 does not have.
pub fn parse_query(q: &str) -> Result<Expr, ApiError> {
    register_2_42_functions();
    let expr = parser::parse(q).map_err(|e| ApiError::bad_data(format!("invalid parameter \"query\": {e}")))?;
    check_2_42(&expr)?;
    Ok(expr)
}

fn check_2_42(e: &Expr) -> Result<(), ApiError> {
    let bad = |m: String| Err(ApiError::bad_data(format!("invalid parameter \"query\": {m}")));
    match e {
        Expr::Call(c) => {
            if !FUNCTIONS_2_42.contains(&c.func.name) {
                return bad(format!("unknown function with name {:?}", c.func.name));
            }
            c.args.args.iter().try_for_each(|a| check_2_42(a))
        }
        Expr::Aggregate(a) => {
            let op = a.op.id();
            if op == promql_parser::parser::token::T_LIMITK || op == promql_parser::parser::token::T_LIMIT_RATIO {
                return bad(format!("unknown aggregation {}", a.op));
            }
            if let Some(p) = &a.param {
                check_2_42(p)?;
            }
            check_2_42(&a.expr)
        }
        Expr::VectorSelector(vs) if !vs.matchers.or_matchers.is_empty() => {
            bad("`or` inside a selector is not PromQL 2.42".into())
        }
        Expr::MatrixSelector(m) if !m.vs.matchers.or_matchers.is_empty() => {
            bad("`or` inside a selector is not PromQL 2.42".into())
        }
        Expr::Paren(p) => check_2_42(&p.expr),
        Expr::Unary(u) => check_2_42(&u.expr),
        Expr::Subquery(s) => check_2_42(&s.expr),
        Expr::Binary(b) => {
            check_2_42(&b.lhs)?;
            check_2_42(&b.rhs)
        }
        _ => Ok(()),
    }
}

/// Appends `t` (milliseconds) as Prometheus renders a time: seconds, as a JSON number.
fn push_time(out: &mut String, t: i64) {
    use std::fmt::Write;
    if t % 1000 == 0 {
        let _ = write!(out, "{}", t / 1000);
    } else {
        let _ = write!(out, "{}", t as f64 / 1000.0);
    }
}

/// Appends a JSON string.
fn push_str(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&Value::String(s.to_owned()).to_string());
    }
}

fn push_labels(out: &mut String, labels: &[(String, String)]) {
    out.push('{');
    for (i, (n, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, n);
        out.push(':');
        push_str(out, v);
    }
    out.push('}');
}

/// `[time, "value"]`.
fn push_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    push_time(out, t);
    out.push_str(",\"");
    // Prometheus' JSON for a sample value: a string, `NaN`, `+Inf`, `-Inf`.
    super::engine::aggregate::write_value(out, v);
    out.push_str("\"]");
}

fn metric_json(labels: &[(String, String)]) -> Value {
    Value::Object(labels.iter().map(|(n, v)| (n.clone(), Value::String(v.clone()))).collect())
}

/// A success body with `value` as its data, written directly (a range answer holds hundreds
/// of thousands of points: building a `serde_json::Value` of them took longer than evaluating).
fn render_success(value: QueryValue, warnings: &[String]) -> Response {
    let mut out = String::with_capacity(1024);
    out.push_str("{\"status\":\"success\",\"data\":{\"resultType\":");
    match value {
        QueryValue::Scalar { t, v } => {
            out.push_str("\"scalar\",\"result\":");
            push_point(&mut out, t, v);
        }
        QueryValue::String { t, v } => {
            out.push_str("\"string\",\"result\":[");
            push_time(&mut out, t);
            out.push(',');
            push_str(&mut out, &v);
            out.push(']');
        }
        QueryValue::Vector(samples) => {
            out.push_str("\"vector\",\"result\":[");
            for (i, (l, t, v)) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                push_labels(&mut out, l);
                out.push_str(",\"value\":");
                push_point(&mut out, *t, *v);
                out.push('}');
            }
            out.push(']');
        }
        QueryValue::Matrix(series) => {
            out.push_str("\"matrix\",\"result\":[");
            for (i, (l, points)) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                push_labels(&mut out, l);
                out.push_str(",\"values\":[");
                for (j, (t, v)) in points.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    push_point(&mut out, *t, *v);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push('}');
    if !warnings.is_empty() {
        out.push_str(",\"warnings\":");
        out.push_str(&json!(warnings).to_string());
    }
    out.push('}');
    ([(header::CONTENT_TYPE, "application/json")], out).into_response()
}

/// The deadline of a request: the configured timeout, shortened by a `timeout` parameter.
fn deadline(api: &QueryApi, p: &[(String, String)]) -> Result<(Instant, Duration), ApiError> {
    let mut timeout = api.limits.timeout;
    if let Some(t) = param(p, "timeout") {
        let ms = parse_duration("timeout", t)?;
        if ms > 0 {
            timeout = timeout.min(Duration::from_millis(ms as u64));
        }
    }
    Ok((Instant::now() + timeout, timeout))
}

/// What a query asks: the expression, its times (`start == end` for an instant query) and step.
struct Ask {
    expr: Arc<Expr>,
    start: i64,
    end: i64,
    step: i64,
    instant: bool,
}

/// [`run_once`], shared by identical requests in flight at the same time.
async fn run(api: &QueryApi, ask: Ask, p: &[(String, String)]) -> Result<Response, ApiError> {
    let Ask { start, end, step, instant, .. } = ask;
    let key = format!(
        "{instant}|{start}|{end}|{step}|{}|{}",
        param(p, "timeout").unwrap_or(""),
        param(p, "query").unwrap_or("")
    );
    let answer = api
        .inflight
        .run(key, || async {
            let response = match run_once(api, ask, p).await {
                Ok(r) => r,
                Err(e) => e.into_response(),
            };
            Answer::from_response(response).await
        })
        .await;
    Ok(answer.response())
}

/// Fetches and evaluates `expr` between `start` and `end` (equal for an instant query).
///
/// The fetched series are keyed by the addresses of the selector nodes, so the evaluation runs
/// on this very tree (shared, never cloned).
async fn run_once(api: &QueryApi, ask: Ask, p: &[(String, String)]) -> Result<Response, ApiError> {
    let Ask { expr, start, end, step, instant } = ask;
    let (deadline, timeout) = deadline(api, p)?;
    let _slot = api.slots.acquire().await.map_err(|_| ApiError::bad_data("shutting down"))?;
    let lookback = api.limits.lookback.as_millis() as i64;
    let mut wanted: Vec<Need<'_>> = Vec::new();
    needs(&expr, start, end, start, end, lookback, &mut wanted);
    let limits = Limits { max_bytes: api.limits.max_bytes, max_samples: api.limits.max_samples };
    let began = Instant::now();
    // Replicas get three quarters of the time; evaluation the rest.
    let fetched: (Fetched, Vec<String>) =
        tokio::time::timeout(timeout, fetch(&api.sources, &wanted, limits, timeout.mul_f64(0.75)))
            .await
            .map_err(|_| ApiError::from(EvalError::Timeout))??;
    let (data, warnings) = fetched;
    let fetched_in = began.elapsed();
    let series: usize = data.series.values().map(|v| v.len()).sum();
    // Dropped with this future when the client goes away: the evaluation then stops.
    struct CancelOnDrop(Arc<std::sync::atomic::AtomicBool>);
    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    let cancelled = CancelOnDrop(Default::default());
    let settings = Settings {
        start_ms: start,
        end_ms: end,
        step_ms: step.max(1),
        lookback_ms: lookback,
        default_subquery_step_ms: 60_000,
        max_samples: api.limits.max_samples as usize,
        deadline,
        cancelled: cancelled.0.clone(),
    };
    drop(wanted);
    // Evaluation is CPU work: off the async workers.
    let result = tokio::task::spawn_blocking(move || {
        let ev = Evaluator::new(&data, settings);
        if instant { ev.instant(&expr) } else { ev.range(&expr) }
    })
    .await
    .map_err(|e| ApiError {
        kind: "internal",
        status: StatusCode::INTERNAL_SERVER_ERROR,
        message: e.to_string(),
    })??;
    let evaluated_in = began.elapsed() - fetched_in;
    let response = render_success(result, &warnings);
    tracing::debug!(?fetched_in, ?evaluated_in, rendered_in = ?(began.elapsed() - fetched_in - evaluated_in), series, "query answered");
    Ok(response)
}

async fn query(State(api): State<Arc<QueryApi>>, Params(p): Params) -> Response {
    let result = async {
        let q = param(&p, "query")
            .ok_or_else(|| ApiError::bad_data("invalid parameter \"query\": no expression found in input"))?;
        let expr = Arc::new(parse_query(q)?);
        let t = match param(&p, "time") {
            Some(t) => parse_time("time", t)?,
            None => crate::clock::now_ms(),
        };
        run(&api, Ask { expr, start: t, end: t, step: 1, instant: true }, &p).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn query_range(State(api): State<Arc<QueryApi>>, Params(p): Params) -> Response {
    let result = async {
        let start = parse_time("start", param(&p, "start").ok_or_else(|| ApiError::bad_data("invalid parameter \"start\": cannot parse \"\" to a valid timestamp"))?)?;
        let end = parse_time("end", param(&p, "end").ok_or_else(|| ApiError::bad_data("invalid parameter \"end\": cannot parse \"\" to a valid timestamp"))?)?;
        if end < start {
            return Err(ApiError::bad_data("invalid parameter \"end\": end timestamp must not be before start time"));
        }
        let step = parse_duration("step", param(&p, "step").ok_or_else(|| ApiError::bad_data("invalid parameter \"step\": cannot parse \"\" to a valid duration"))?)?;
        if step <= 0 {
            return Err(ApiError::bad_data(
                "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        if (end - start) / step > MAX_POINTS {
            return Err(ApiError::bad_data(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            ));
        }
        let q = param(&p, "query").ok_or_else(|| ApiError::bad_data("invalid parameter \"query\": no expression found in input"))?;
        let expr = Arc::new(parse_query(q)?);
        use promql_parser::parser::value::ValueType;
        let kind = expr.value_type();
        if !matches!(kind, ValueType::Scalar | ValueType::Vector) {
            let name = if kind == ValueType::Matrix { "range vector" } else { "string" };
            return Err(ApiError::bad_data(format!(
                "invalid expression type \"{name}\" for range query, must be Scalar or instant Vector"
            )));
        }
        run(&api, Ask { expr, start, end, step, instant: false }, &p).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The series matching a metadata request's `match[]` selectors over `start`..`end`.
/// Prometheus' default range is all time; promfed's is the last 6 hours (it reads samples
/// through remote read to find series), unless `start` says otherwise.
async fn matched_series(
    api: &QueryApi,
    p: &[(String, String)],
    required: bool,
) -> Result<(Vec<Arc<Vec<(String, String)>>>, Vec<String>), ApiError> {
    let end = match param(p, "end") {
        Some(t) => parse_time("end", t)?,
        None => crate::clock::now_ms(),
    };
    let start = match param(p, "start") {
        Some(t) => parse_time("start", t)?,
        None => end - 6 * 3_600_000,
    };
    let mut selectors: Vec<&str> = p.iter().filter(|(k, _)| k == "match[]").map(|(_, v)| v.as_str()).collect();
    if selectors.is_empty() {
        if required {
            return Err(ApiError::bad_data("no match[] parameter provided"));
        }
        selectors.push("{__name__=~\".+\"}");
    }
    let mut exprs = Vec::new();
    for s in selectors {
        let e = parse_query(s).map_err(|e| ApiError::bad_data(e.message.replace("\"query\"", "\"match[]\"")))?;
        if !matches!(e, Expr::VectorSelector(_)) {
            return Err(ApiError::bad_data(format!("invalid parameter \"match[]\": {s:?} is not a series selector")));
        }
        exprs.push(e);
    }
    let (_deadline, timeout) = deadline(api, p)?;
    let _slot = api.slots.acquire().await.map_err(|_| ApiError::bad_data("shutting down"))?;
    let mut wanted = Vec::new();
    for e in &exprs {
        if let Expr::VectorSelector(vs) = e {
            wanted.push(Need { selector: vs, from_ms: start, to_ms: end });
        }
    }
    let limits = Limits { max_bytes: api.limits.max_bytes, max_samples: api.limits.max_samples };
    let (data, warnings) = tokio::time::timeout(timeout, fetch(&api.sources, &wanted, limits, timeout.mul_f64(0.75)))
        .await
        .map_err(|_| ApiError::from(EvalError::Timeout))??;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for series in data.series.into_values().flat_map(Arc::unwrap_or_clone) {
        if seen.insert(series.labels.clone()) {
            out.push(series.labels);
        }
    }
    out.sort();
    Ok((out, warnings))
}

fn limit_of(p: &[(String, String)]) -> Result<Option<usize>, ApiError> {
    match param(p, "limit") {
        None => Ok(None),
        Some(l) => match l.parse::<usize>() {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(ApiError::bad_data(format!("invalid parameter \"limit\": cannot parse {l:?}"))),
        },
    }
}

async fn series(State(api): State<Arc<QueryApi>>, Params(p): Params) -> Response {
    let result = async {
        let (series, warnings) = matched_series(&api, &p, true).await?;
        let limit = limit_of(&p)?;
        let data: Vec<Value> = series.iter().take(limit.unwrap_or(usize::MAX)).map(|l| metric_json(l)).collect();
        Ok::<_, ApiError>(success(json!(data), &warnings))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn labels(State(api): State<Arc<QueryApi>>, Params(p): Params) -> Response {
    let result = async {
        let (series, warnings) = matched_series(&api, &p, false).await?;
        let names: BTreeSet<&str> = series.iter().flat_map(|l| l.iter().map(|(n, _)| n.as_str())).collect();
        let limit = limit_of(&p)?;
        let data: Vec<&str> = names.into_iter().take(limit.unwrap_or(usize::MAX)).collect();
        Ok::<_, ApiError>(success(json!(data), &warnings))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn label_values(State(api): State<Arc<QueryApi>>, Path(name): Path<String>, RawQuery(raw): RawQuery) -> Response {
    let p = params(&Method::GET, &HeaderMap::new(), raw, &Bytes::new());
    let result = async {
        if !crate::series::is_label_name(name.as_bytes()) {
            return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
        }
        let (series, warnings) = matched_series(&api, &p, false).await?;
        let values: BTreeSet<&str> =
            series.iter().filter_map(|l| l.iter().find(|(n, _)| n == &name).map(|(_, v)| v.as_str())).collect();
        let limit = limit_of(&p)?;
        let data: Vec<&str> = values.into_iter().take(limit.unwrap_or(usize::MAX)).collect();
        Ok(success(json!(data), &warnings))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn exemplars(Params(p): Params) -> Response {
    match param(&p, "query").map(parse_query) {
        Some(Err(e)) => e.into_response(),
        None => ApiError::bad_data("invalid parameter \"query\": no expression found in input").into_response(),
        // Exemplars are not read from the replicas: a valid, empty answer.
        Some(Ok(_)) => success(json!([]), &[]),
    }
}

async fn format_query(Params(p): Params) -> Response {
    match param(&p, "query").map(parse_query) {
        Some(Ok(e)) => success(json!(e.to_string()), &[]),
        Some(Err(e)) => e.into_response(),
        None => ApiError::bad_data("invalid parameter \"query\": no expression found in input").into_response(),
    }
}

/// A label set (a JSON object) as the merged view shows it: replica labels dropped, the
/// group's labels added (a label already there wins when `honor_labels`).
fn relabel(labels: &mut Value, identity: &crate::series::Identity) {
    let Some(map) = labels.as_object_mut() else { return };
    for d in &identity.drop {
        map.remove(d);
    }
    for (n, v) in &identity.add {
        if !(identity.honor_labels && map.contains_key(n)) {
            map.insert(n.clone(), Value::String(v.clone()));
        }
    }
}

/// `/api/v1/rules`: what each group's leader evaluates, its rule groups' files prefixed with
/// the promfed group, labels (of rules and of their alerts) as the merged view shows them.
async fn rules(State(api): State<Arc<QueryApi>>, RawQuery(raw): RawQuery) -> Response {
    let path = raw.map_or_else(|| "/api/v1/rules".to_owned(), |q| format!("/api/v1/rules?{q}"));
    let (answers, warnings) = super::fetch::from_leaders(&api.sources, &path).await;
    let mut groups = Vec::new();
    for (source, data) in answers {
        for mut g in data["groups"].as_array().cloned().unwrap_or_default() {
            if let Some(file) = g["file"].as_str() {
                g["file"] = Value::String(format!("{}: {file}", source.name));
            }
            for rule in g["rules"].as_array_mut().into_iter().flatten() {
                relabel(&mut rule["labels"], &source.identity);
                for alert in rule["alerts"].as_array_mut().into_iter().flatten() {
                    relabel(&mut alert["labels"], &source.identity);
                }
            }
            groups.push(g);
        }
    }
    success(json!({"groups": groups}), &warnings)
}

/// `/api/v1/alerts`: the alerts of every group's leader, labels as the merged view shows them.
async fn alerts(State(api): State<Arc<QueryApi>>) -> Response {
    let (answers, warnings) = super::fetch::from_leaders(&api.sources, "/api/v1/alerts").await;
    let mut all = Vec::new();
    for (source, data) in answers {
        for mut alert in data["alerts"].as_array().cloned().unwrap_or_default() {
            relabel(&mut alert["labels"], &source.identity);
            all.push(alert);
        }
    }
    success(json!({"alerts": all}), &warnings)
}

/// Prometheus' build information ([`crate::build::BuildInfo::api`]; no `features`, so Grafana
/// treats promfed as a Prometheus 2.42).
async fn buildinfo() -> Response {
    success(crate::build::BUILD.api(), &[])
}
