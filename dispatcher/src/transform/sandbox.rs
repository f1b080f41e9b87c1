//! One run of a subscription's filter and transform, on the calling thread,
//! in a runtime of its own.
//!
//! Every run gets a fresh QuickJS runtime and context, so nothing a program
//! leaves behind (globals, prototypes it patched, memory it held) reaches
//! the next run, which may be another tenant's. QuickJS itself has no I/O:
//! without quickjs-libc there is no `require`, `fetch`, file system or
//! timer, and the context is given nothing else. The runtime carries the
//! hard limits: a memory limit, a maximum stack size, and an interrupt
//! handler that stops a run over its time ([`super::limits`]).
//!
//! Runs block: call this from a thread that may block (see [`super::pool`]).
use super::limits::{Deadline, Limits};
use super::output::{self, Method, Request};
use super::{Part, Program, Rendered, TransformError};
use rquickjs::convert::Coerced;
use rquickjs::{CatchResultExt, CaughtError, Context, Ctx, Function, Object, Runtime, Value};

/// What a run is told about the delivery besides the event.
#[derive(Clone, Copy, Debug)]
pub struct Envelope<'a> {
    /// The event as the webhook body carries it (`{id, type, timestamp, data}`), serialised.
    pub body: &'a str,
    /// Its type, as Svix's `webhook.eventType`.
    pub event_type: &'a str,
    /// The endpoint, as Svix's `webhook.url` (read-only here).
    pub url: &'a str,
}

/// The lines the filter's wrapper adds before the user's first line.
const FILTER_PROLOGUE_LINES: u32 = 1;

/// The filter, wrapped into a function of `event`: an expression, and a
/// newline before the closing parenthesis so a trailing `//` comment does
/// not swallow it.
fn filter_function(source: &str) -> String {
    format!("(function (event) {{ return (\n{source}\n); }})")
}

/// A fresh runtime with the limits set, and the deadline it answers to.
fn runtime(limits: Limits) -> Result<(Runtime, Context, Deadline), TransformError> {
    let runtime = Runtime::new().map_err(|_| TransformError::Sandbox)?;
    runtime.set_memory_limit(limits.memory_bytes);
    runtime.set_max_stack_size(limits.stack_bytes);
    let context = Context::full(&runtime).map_err(|_| TransformError::Sandbox)?;
    let deadline = Deadline::start(limits);
    let handler = deadline.clone();
    runtime.set_interrupt_handler(Some(Box::new(move || handler.expired())));
    Ok((runtime, context, deadline))
}

/// Compiles the program (and runs the transform's top level, which defines
/// `handler`) without an event: what saving a subscription checks.
pub fn check(program: &Program, limits: Limits) -> Result<(), TransformError> {
    too_long(program, limits)?;
    let (_runtime, context, deadline) = runtime(limits)?;
    context.with(|ctx| {
        if let Some(filter) = program.filter() {
            ctx.eval::<Function, _>(filter_function(filter))
                .catch(&ctx)
                .map_err(|e| classify(Part::Filter, e, &deadline, limits, true))?;
        }
        if let Some(transform) = program.transform() {
            handler(&ctx, transform).map_err(|e| e.into_error(Part::Transform, &deadline, limits, true))?;
        }
        Ok(())
    })
}

/// Runs the filter and then the transform on one event.
pub fn run(program: &Program, envelope: Envelope<'_>, limits: Limits) -> Result<Rendered, TransformError> {
    too_long(program, limits)?;
    let (_runtime, context, deadline) = runtime(limits)?;
    context.with(|ctx| {
        if let Some(filter) = program.filter() {
            let passes = passes_filter(&ctx, filter, envelope.body)
                .map_err(|e| classify(Part::Filter, e, &deadline, limits, false))?;
            if !passes {
                return Ok(Rendered::Filtered(Part::Filter));
            }
        }
        let Some(transform) = program.transform() else {
            return Ok(Rendered::Send(Request::plain(envelope.body.as_bytes().to_vec())));
        };
        // Reading the result runs the program's getters and toJSON: it can
        // throw or run out of time like the rest.
        transform_event(&ctx, transform, envelope)
            .and_then(|returned| read_webhook(&ctx, returned, envelope.url, limits))
            .map_err(|e| e.into_error(Part::Transform, &deadline, limits, false))
    })
}

/// Refuses sources over the size limit before compiling them.
fn too_long(program: &Program, limits: Limits) -> Result<(), TransformError> {
    for (part, source) in [(Part::Filter, program.filter()), (Part::Transform, program.transform())] {
        if source.is_some_and(|s| s.len() > limits.source_bytes) {
            return Err(TransformError::Compile {
                part,
                message: format!("longer than {} bytes", limits.source_bytes),
            });
        }
    }
    Ok(())
}

fn passes_filter<'js>(ctx: &Ctx<'js>, filter: &str, body: &str) -> Result<bool, CaughtError<'js>> {
    let function: Function = ctx.eval(filter_function(filter)).catch(ctx)?;
    let event = ctx.json_parse(body).catch(ctx)?;
    let verdict: Coerced<bool> = function.call((event,)).catch(ctx)?;
    Ok(verdict.0)
}

/// Runs the transform's top level and returns its `handler`.
fn handler<'js>(ctx: &Ctx<'js>, transform: &str) -> Result<Function<'js>, Caught<'js>> {
    ctx.eval::<(), _>(transform).catch(ctx)?;
    let handler: Value = ctx.globals().get("handler").catch(ctx)?;
    handler.into_function().ok_or(Caught::Invalid(TransformError::NoHandler))
}

/// Calls `handler(webhook)` with Svix's webhook object.
fn transform_event<'js>(ctx: &Ctx<'js>, transform: &str, envelope: Envelope<'_>) -> Result<Value<'js>, Caught<'js>> {
    let handler = handler(ctx, transform)?;
    let webhook = Object::new(ctx.clone()).catch(ctx)?;
    webhook.set("method", "POST").catch(ctx)?;
    webhook.set("url", envelope.url).catch(ctx)?;
    webhook.set("eventType", envelope.event_type).catch(ctx)?;
    webhook.set("payload", ctx.json_parse(envelope.body).catch(ctx)?).catch(ctx)?;
    webhook.set("cancel", false).catch(ctx)?;
    webhook.set("headers", Object::new(ctx.clone()).catch(ctx)?).catch(ctx)?;
    Ok(handler.call((webhook,)).catch(ctx)?)
}

/// A transform fails either in JavaScript or on our checks of what it defines and returns.
enum Caught<'js> {
    Js(CaughtError<'js>),
    Invalid(TransformError),
}

impl Caught<'_> {
    /// The error of the run: ours as it is, the engine's classified.
    fn into_error(self, part: Part, deadline: &Deadline, limits: Limits, compiling: bool) -> TransformError {
        match self {
            Self::Js(e) => classify(part, e, deadline, limits, compiling),
            Self::Invalid(e) => e,
        }
    }
}

impl<'js> From<CaughtError<'js>> for Caught<'js> {
    fn from(e: CaughtError<'js>) -> Self {
        Self::Js(e)
    }
}

impl From<TransformError> for Caught<'_> {
    fn from(e: TransformError) -> Self {
        Self::Invalid(e)
    }
}

/// Turns what `handler` returned into the request to send.
fn read_webhook<'js>(ctx: &Ctx<'js>, returned: Value<'js>, url: &str, limits: Limits) -> Result<Rendered, Caught<'js>> {
    let invalid = |why| Caught::Invalid(TransformError::InvalidOutput(why));
    let webhook = returned.into_object().ok_or_else(|| invalid("handler must return the webhook object"))?;
    let cancel: Value = webhook.get("cancel").catch(ctx)?;
    if cancel.as_bool() == Some(true) {
        return Ok(Rendered::Filtered(Part::Transform));
    }
    let method: Value = webhook.get("method").catch(ctx)?;
    let method = match method.as_string() {
        None if method.is_undefined() => Method::Post,
        None => return Err(invalid("webhook.method must be a string")),
        Some(name) => Method::parse(&name.to_string().catch(ctx)?)?,
    };
    let new_url: Value = webhook.get("url").catch(ctx)?;
    if !new_url.is_undefined() && new_url.as_string().and_then(|s| s.to_string().ok()).as_deref() != Some(url) {
        return Err(invalid("webhook.url cannot be changed; the endpoint is the subscription's"));
    }
    let headers = read_headers(ctx, webhook.get("headers").catch(ctx)?)?;
    let payload: Value = webhook.get("payload").catch(ctx)?;
    if payload.is_undefined() {
        return Err(invalid("webhook.payload is missing"));
    }
    let body = ctx.json_stringify(payload).catch(ctx)?.ok_or_else(|| invalid("webhook.payload is not JSON"))?;
    let body = body.to_string().catch(ctx)?;
    let header_bytes: usize = headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    if body.len() + header_bytes > limits.output_bytes {
        return Err(Caught::Invalid(TransformError::OutputTooLarge { limit: limits.output_bytes }));
    }
    let headers = output::headers(headers, limits.max_headers)?;
    Ok(Rendered::Send(Request { method, headers, body: body.into_bytes() }))
}

/// The `headers` object: string names to string values.
fn read_headers<'js>(ctx: &Ctx<'js>, headers: Value<'js>) -> Result<Vec<(String, String)>, Caught<'js>> {
    if headers.is_undefined() || headers.is_null() {
        return Ok(Vec::new());
    }
    let invalid = || Caught::Invalid(TransformError::InvalidOutput("webhook.headers must map names to strings"));
    let headers = headers.into_object().ok_or_else(invalid)?;
    let mut out = Vec::new();
    for prop in headers.props::<String, Value>() {
        let (name, value) = prop.catch(ctx)?;
        let value = value.as_string().ok_or_else(invalid)?.to_string().catch(ctx)?;
        out.push((name, value));
    }
    Ok(out)
}

/// The standard error constructors, the only names an error's kind is
/// reported with: a program's own could carry payload values.
const STANDARD_ERRORS: [&str; 9] = [
    "Error",
    "TypeError",
    "RangeError",
    "ReferenceError",
    "SyntaxError",
    "InternalError",
    "URIError",
    "EvalError",
    "AggregateError",
];

/// Names a failure. A run stopped by its deadline, out of memory or out of
/// stack is reported as that limit; anything else as what it threw.
fn classify(
    part: Part,
    error: CaughtError<'_>,
    deadline: &Deadline,
    limits: Limits,
    compiling: bool,
) -> TransformError {
    if deadline.fired() {
        return TransformError::Time { part, limit_ms: limits.cpu_time.as_millis() };
    }
    let (kind, message, stack) = match &error {
        CaughtError::Exception(e) => {
            let name: Option<Coerced<String>> = e.get("name").ok().flatten();
            let kind = name.and_then(|n| STANDARD_ERRORS.iter().copied().find(|k| *k == n.0)).unwrap_or("a value");
            (kind, e.message().unwrap_or_default(), e.stack().unwrap_or_default())
        }
        CaughtError::Value(_) => ("a value", String::new(), String::new()),
        CaughtError::Error(rquickjs::Error::Allocation) => {
            return TransformError::Memory { part, limit_mib: limits.memory_bytes >> 20 }
        }
        CaughtError::Error(e) => ("an error", e.to_string(), String::new()),
    };
    let engine = matches!(kind, "InternalError" | "RangeError");
    if engine && message.contains("out of memory") {
        return TransformError::Memory { part, limit_mib: limits.memory_bytes >> 20 };
    }
    if engine && (message.contains("stack overflow") || message.contains("call stack size")) {
        return TransformError::Stack { part };
    }
    if kind == "SyntaxError" && (compiling || stack_is_compile(&stack)) {
        return TransformError::Compile { part, message: format!("{message}{}", at_line(part, &stack)) };
    }
    let line = line_of(&stack).map(|l| if part == Part::Filter { l.saturating_sub(FILTER_PROLOGUE_LINES) } else { l });
    TransformError::Threw { part, kind, line, detail: message }
}

/// A syntax error raised while compiling has no function frame in its stack.
fn stack_is_compile(stack: &str) -> bool {
    !stack.lines().any(|l| l.trim_start().starts_with("at ") && l.contains('('))
}

fn at_line(part: Part, stack: &str) -> String {
    let adjust = if part == Part::Filter { FILTER_PROLOGUE_LINES } else { 0 };
    line_of(stack).map(|l| format!(" (line {})", l.saturating_sub(adjust).max(1))).unwrap_or_default()
}

/// The line of the innermost frame of an engine stack trace, like
/// `    at handler (<input>:3:12)`: only digits are read from it.
fn line_of(stack: &str) -> Option<u32> {
    let frame = stack.lines().find(|l| l.trim_start().starts_with("at "))?;
    let inner = frame.rsplit_once('(').map_or(frame, |(_, rest)| rest);
    let mut numbers = inner.split(':').skip(1).map(|n| n.trim_end_matches(')'));
    numbers.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    const BODY: &str = r#"{"id":"evt_1","type":"sale.completed","timestamp":"2026-01-01T00:00:00.000Z","data":{"location_id":"loc_1","amount":150,"email":"ann@example.com"}}"#;

    fn envelope() -> Envelope<'static> {
        Envelope { body: BODY, event_type: "sale.completed", url: "https://crm.example.com/hook" }
    }

    fn run_with(filter: Option<&str>, transform: Option<&str>) -> Result<Rendered, TransformError> {
        run(&Program::saved(filter, transform), envelope(), Limits::default())
    }

    fn sent(rendered: Result<Rendered, TransformError>) -> Request {
        match rendered {
            Ok(Rendered::Send(request)) => request,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    fn transformed(transform: &str) -> Result<Rendered, TransformError> {
        run_with(None, Some(transform))
    }

    #[test]
    fn a_filter_is_an_expression_over_the_event() {
        assert_eq!(
            sent(run_with(Some(r#"event.data.location_id === "loc_1""#), None)).body,
            BODY.as_bytes(),
            "passed untouched"
        );
        assert_eq!(
            run_with(Some("event.data.amount > 100 // big sales only"), None),
            Ok(Rendered::Send(Request::plain(BODY.into())))
        );
        assert_eq!(run_with(Some("event.data.amount > 1000"), None), Ok(Rendered::Filtered(Part::Filter)));
        assert_eq!(run_with(Some(r#"event.type.startsWith("client.")"#), None), Ok(Rendered::Filtered(Part::Filter)));
    }

    #[test]
    fn a_transform_is_svix_handler_and_sets_payload_method_and_headers() {
        let request = sent(transformed(
            r#"function handler(webhook) {
                 webhook.payload = { email: webhook.payload.data.email, tags: [webhook.eventType] };
                 webhook.method = "PUT";
                 webhook.headers = { "x-crm-token": "abc" };
                 return webhook;
               }"#,
        ));
        assert_eq!(request.method, Method::Put);
        assert_eq!(request.body, br#"{"email":"ann@example.com","tags":["sale.completed"]}"#);
        assert_eq!(request.headers.len(), 1);
        assert_eq!(request.headers[0].0.as_str(), "x-crm-token");
        assert_eq!(request.headers[0].1, "abc");
        assert_eq!(sent(transformed("function handler(w) { return w; }")).body, BODY.as_bytes());
        assert_eq!(
            transformed("function handler(w) { w.cancel = true; return w; }"),
            Ok(Rendered::Filtered(Part::Transform))
        );
    }

    #[test]
    fn syntax_errors_are_compile_errors_with_a_line() {
        let e = check(&Program::saved(Some("event.data.amount >"), None), Limits::default()).unwrap_err();
        assert!(matches!(e, TransformError::Compile { part: Part::Filter, .. }), "{e:?}");
        let e =
            check(&Program::saved(None, Some("function handler(w) {\n  return w\n}}")), Limits::default()).unwrap_err();
        assert!(matches!(e, TransformError::Compile { part: Part::Transform, .. }), "{e:?}");
        assert!(e.to_string().contains("line 3"), "{e}");
        assert_eq!(check(&Program::saved(None, Some("let x = 1;")), Limits::default()), Err(TransformError::NoHandler));
        assert_eq!(
            check(
                &Program::saved(Some("event.data.x == 1"), Some("function handler(w) { return w }")),
                Limits::default()
            ),
            Ok(())
        );
        let long = "1 + ".repeat(20_000) + "1";
        assert!(matches!(
            check(&Program::saved(Some(&long), None), Limits::default()),
            Err(TransformError::Compile { .. })
        ));
    }

    /// Each hostile run ends quickly with its limit named.
    fn hostile(transform: &str) -> TransformError {
        let started = Instant::now();
        let e = transformed(transform).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2), "{e} took {:?}", started.elapsed());
        e
    }

    #[test]
    fn an_infinite_loop_is_stopped_at_the_time_limit() {
        let e = hostile("function handler(w) { while (true) {} }");
        assert_eq!(e, TransformError::Time { part: Part::Transform, limit_ms: 10 });
        assert_eq!(e.to_string(), "transform exceeded its time limit (10 ms of CPU)");
        // Catching the interruption does not help: it is uncatchable.
        let e = hostile("function handler(w) { for (;;) { try { while (true) {} } catch (e) {} } }");
        assert_eq!(e, TransformError::Time { part: Part::Transform, limit_ms: 10 });
        let e = run_with(Some("(() => { while (true) {} })()"), None).unwrap_err();
        assert_eq!(e, TransformError::Time { part: Part::Filter, limit_ms: 10 });
        // At the top level too, when a subscription is saved.
        let e = check(&Program::saved(None, Some("while (true) {}")), Limits::default()).unwrap_err();
        assert!(matches!(e, TransformError::Time { .. }), "{e:?}");
    }

    #[test]
    fn a_huge_allocation_hits_the_memory_limit() {
        let e = hostile("function handler(w) { const a = []; for (;;) a.push(new Array(100000).fill(w)); }");
        assert!(matches!(e, TransformError::Memory { part: Part::Transform, limit_mib: 16 }), "{e:?}");
        let e = hostile("function handler(w) { const a = []; for (;;) a.push('x'.repeat(1 << 20) + a.length); }");
        assert!(matches!(e, TransformError::Memory { .. }), "{e:?}");
    }

    #[test]
    fn deep_recursion_hits_the_stack_limit() {
        let e = hostile("function handler(w) { function f(n) { return f(n + 1) + 1; } return f(0); }");
        assert_eq!(e, TransformError::Stack { part: Part::Transform });
    }

    #[test]
    fn an_enormous_output_is_refused() {
        let e = hostile("function handler(w) { w.payload = 'x'.repeat(1000000); return w; }");
        assert_eq!(e, TransformError::OutputTooLarge { limit: 256 * 1024 });
        let e = hostile(
            "function handler(w) { w.headers = {}; for (let i = 0; i < 100; i++) w.headers['x-' + i] = 'v'; return w; }",
        );
        assert!(matches!(e, TransformError::InvalidOutput(_)), "{e:?}");
    }

    #[test]
    fn there_is_no_io() {
        let probe = "[typeof require, typeof fetch, typeof setTimeout, typeof setInterval, typeof process, \
                     typeof std, typeof os, typeof XMLHttpRequest, typeof WebSocket, typeof Deno, typeof import_meta]";
        let request = sent(transformed(&format!("function handler(w) {{ w.payload = {probe}; return w; }}")));
        let seen: Vec<String> = serde_json::from_slice(&request.body).unwrap();
        assert!(seen.iter().all(|t| t == "undefined"), "{seen:?}");
        // Nor modules to load them from.
        let e = check(
            &Program::saved(None, Some("import * as os from 'os'; function handler(w) { return w }")),
            Limits::default(),
        );
        assert!(e.is_err());
        let e = transformed("function handler(w) { return import('os').then(() => w); }").unwrap_err();
        assert!(matches!(e, TransformError::InvalidOutput(_) | TransformError::Threw { .. }), "{e:?}");
    }

    #[test]
    fn nothing_leaks_from_one_run_to_the_next() {
        let program = Program::saved(
            None,
            Some("function handler(w) { w.payload = { seen: globalThis.leak || null }; globalThis.leak = w.payload; Object.prototype.polluted = 1; return w; }"),
        );
        for _ in 0..2 {
            let body = sent(run(&program, envelope(), Limits::default())).body;
            assert_eq!(body, br#"{"seen":null}"#);
        }
    }

    #[test]
    fn stored_errors_name_the_kind_and_line_never_the_payload() {
        let e = transformed("function handler(w) {\n  throw new Error('bad ' + w.payload.data.email);\n}").unwrap_err();
        assert_eq!(e.to_string(), "transform threw Error at line 2");
        assert!(e.detail().contains("ann@example.com"), "the test endpoint shows it: {}", e.detail());
        let e = transformed("function handler(w) { throw { name: w.payload.data.email }; }").unwrap_err();
        assert!(!e.to_string().contains("ann@"), "{e}");
        let e = transformed(
            "function handler(w) { const e = new TypeError('x'); e.name = w.payload.data.email; throw e; }",
        )
        .unwrap_err();
        assert!(!e.to_string().contains("ann@"), "{e}");
        let e = transformed("function handler(w) { return w.payload.nope.deeper; }").unwrap_err();
        assert!(matches!(e, TransformError::Threw { kind: "TypeError", line: Some(1), .. }), "{e:?}");
        let e = run_with(Some("\nevent.data.nope.deeper"), None).unwrap_err();
        assert!(
            matches!(e, TransformError::Threw { part: Part::Filter, kind: "TypeError", line: Some(2), .. }),
            "{e:?}"
        );
    }

    #[test]
    fn a_transform_cannot_forge_the_signature_or_move_the_endpoint() {
        let e =
            transformed("function handler(w) { w.headers['webhook-signature'] = 'v1,forged'; return w; }").unwrap_err();
        assert!(matches!(e, TransformError::InvalidOutput(_)), "{e:?}");
        let e = transformed("function handler(w) { w.url = 'https://evil.example'; return w; }").unwrap_err();
        assert!(matches!(e, TransformError::InvalidOutput(_)), "{e:?}");
        let e = transformed("function handler(w) { w.method = 'DELETE'; return w; }").unwrap_err();
        assert!(matches!(e, TransformError::InvalidOutput(_)), "{e:?}");
        assert!(matches!(transformed("function handler(w) { }"), Err(TransformError::InvalidOutput(_))));
        assert!(matches!(
            transformed("function handler(w) { delete w.payload; return w; }"),
            Err(TransformError::InvalidOutput(_))
        ));
    }
}
