//! Example plughost / CLIProxyAPI native plugin in Rust (cdylib, no external crates).
//!
//! Same behaviour as the C example: register (reads `greeting`), a management route and
//! resources, bot command `echo` (alias `say`) and `fetch <url>`, a GroupPoke route and a
//! `pre_handle` interceptor; calls `host.log`, `host.http.do` and `host.bot.send`.

mod json;

use json::{b64_decode, b64_encode, parse, Json};
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};
use std::panic::catch_unwind;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Mutex;

const ABI_VERSION: u32 = 1;

#[repr(C)]
pub struct Buffer {
    ptr: *mut c_void,
    len: usize,
}

type HostCallFn = unsafe extern "C" fn(*mut c_void, *const c_char, *const u8, usize, *mut Buffer) -> c_int;
type FreeFn = unsafe extern "C" fn(*mut c_void, usize);
type PluginCallFn = unsafe extern "C" fn(*const c_char, *const u8, usize, *mut Buffer) -> c_int;

#[repr(C)]
pub struct HostApi {
    abi_version: u32,
    host_ctx: *mut c_void,
    call: Option<HostCallFn>,
    free_buffer: Option<FreeFn>,
}

#[repr(C)]
pub struct PluginApi {
    abi_version: u32,
    call: Option<PluginCallFn>,
    free_buffer: Option<FreeFn>,
    shutdown: Option<unsafe extern "C" fn()>,
}

static HOST: AtomicPtr<HostApi> = AtomicPtr::new(std::ptr::null_mut());

struct State {
    greeting: String,
    calls: u64,
}

static STATE: Mutex<State> = Mutex::new(State { greeting: String::new(), calls: 0 });

/// Call a host callback; returns the envelope's result or its error message.
fn call_host(method: &str, request: &Json) -> Result<Json, String> {
    let host = HOST.load(Ordering::Acquire);
    if host.is_null() {
        return Err("no host".into());
    }
    let host = unsafe { &*host };
    let (call, free) = (host.call.ok_or("host.call is NULL")?, host.free_buffer.ok_or("host free is NULL")?);
    let method = CString::new(method).map_err(|e| e.to_string())?;
    let body = request.to_json();
    let mut resp = Buffer { ptr: std::ptr::null_mut(), len: 0 };
    let rc = unsafe { call(host.host_ctx, method.as_ptr(), body.as_ptr(), body.len(), &mut resp) };
    let bytes = if resp.ptr.is_null() {
        Vec::new()
    } else {
        let copy = unsafe { std::slice::from_raw_parts(resp.ptr as *const u8, resp.len) }.to_vec();
        unsafe { free(resp.ptr, resp.len) }; // the host's allocation: freed by the host's free
        copy
    };
    if rc != 0 {
        return Err(format!("host call returned {}", rc));
    }
    let envelope = parse(std::str::from_utf8(&bytes).map_err(|e| e.to_string())?)?;
    if envelope.get("ok") == Some(&Json::Bool(true)) {
        Ok(envelope.get("result").cloned().unwrap_or(Json::Null))
    } else {
        let message = envelope.get("error").and_then(|e| e.get("message")).and_then(Json::str).unwrap_or("failed");
        Err(message.to_string())
    }
}

fn ok(result: Json) -> (c_int, Json) {
    (0, Json::obj(vec![("ok", Json::Bool(true)), ("result", result)]))
}

fn err(code: &str, message: &str) -> (c_int, Json) {
    (0, Json::obj(vec![("ok", Json::Bool(false)), ("error", Json::obj(vec![("code", Json::s(code)), ("message", Json::s(message))]))]))
}

fn reply_text(text: String) -> (c_int, Json) {
    ok(Json::obj(vec![("action", Json::s("reply")), ("text", Json::Str(text))]))
}

fn register(request: &Json) -> (c_int, Json) {
    let yaml = request.get("config_yaml").and_then(Json::str).map(|b| String::from_utf8_lossy(&b64_decode(b)).into_owned());
    let greeting = yaml
        .as_deref()
        .and_then(|y| y.lines().find_map(|l| l.strip_prefix("greeting: ")))
        .map(|g| g.trim().trim_matches('\'').to_string())
        .unwrap_or_else(|| "Hello".to_string());
    STATE.lock().unwrap().greeting = greeting;
    let field = Json::obj(vec![
        ("Name", Json::s("greeting")),
        ("Type", Json::s("string")),
        ("EnumValues", Json::Arr(vec![])),
        ("Description", Json::s("how the plugin greets")),
    ]);
    ok(Json::obj(vec![
        ("schema_version", Json::Num(3.0)),
        (
            "metadata",
            Json::obj(vec![
                ("Name", Json::s("example-rust")),
                ("Version", Json::s("1.0.0")),
                ("Author", Json::s("plughost")),
                ("GitHubRepository", Json::s("https://github.com/plughost/plughost")),
                ("Logo", Json::s("")),
                ("ConfigFields", Json::Arr(vec![field])),
            ]),
        ),
        ("capabilities", Json::obj(vec![("management_api", Json::Bool(true)), ("bot", Json::Bool(true))])),
    ]))
}

fn describe() -> (c_int, Json) {
    let param = |name: &str, variadic: bool| {
        Json::obj(vec![("name", Json::s(name)), ("type", Json::s("str")), ("variadic", Json::Bool(variadic))])
    };
    let echo = Json::obj(vec![
        ("name", Json::s("echo")),
        ("aliases", Json::Arr(vec![Json::s("say")])),
        ("description", Json::s("repeat the text")),
        ("usage", Json::s("echo <text...>")),
        ("category", Json::s("example")),
        ("overloads", Json::Arr(vec![Json::obj(vec![("handler", Json::s("echo")), ("params", Json::Arr(vec![param("text", true)]))])])),
    ]);
    let fetch = Json::obj(vec![
        ("name", Json::s("fetch")),
        ("description", Json::s("GET a URL through the host")),
        ("role", Json::s("admin")),
        ("overloads", Json::Arr(vec![Json::obj(vec![("handler", Json::s("fetch")), ("params", Json::Arr(vec![param("url", false)]))])])),
    ]);
    ok(Json::obj(vec![
        ("commands", Json::Arr(vec![echo, fetch])),
        (
            "routes",
            Json::Arr(vec![Json::obj(vec![
                ("kind", Json::s("notice")),
                ("events", Json::Arr(vec![Json::s("GroupPoke")])),
                ("handler", Json::s("on_poke")),
            ])]),
        ),
        ("interceptors", Json::Arr(vec![Json::obj(vec![("stage", Json::s("pre_handle")), ("handler", Json::s("guard"))])])),
    ]))
}

fn command(request: &Json) -> (c_int, Json) {
    let handler = request.get("handler").and_then(Json::str).unwrap_or("");
    let args: Vec<String> = match request.get("args") {
        Some(Json::Arr(items)) => items.iter().filter_map(|a| a.str().map(str::to_string)).collect(),
        _ => vec![],
    };
    let group = request.get("group_id").and_then(Json::num).unwrap_or(0.0);
    let greeting = {
        let mut state = STATE.lock().unwrap();
        state.calls += 1;
        state.greeting.clone()
    };
    match handler {
        "echo" => {
            let fields = Json::obj(vec![("group", Json::Num(group))]);
            let _ = call_host("host.log", &Json::obj(vec![("level", Json::s("info")), ("message", Json::s("echo called")), ("fields", fields)]));
            if group != 0.0 {
                let send = Json::obj(vec![
                    ("target", Json::s("group")),
                    ("group_id", Json::Num(group)),
                    ("message", Json::s("(echo logged)")),
                    ("host_callback_id", request.get("host_callback_id").cloned().unwrap_or(Json::Null)),
                ]);
                let _ = call_host("host.bot.send", &send);
            }
            reply_text(format!("{}, {}", greeting, args.join(" ")))
        }
        "fetch" => {
            let url = args.first().cloned().unwrap_or_default();
            match call_host("host.http.do", &Json::obj(vec![("method", Json::s("GET")), ("url", Json::Str(url))])) {
                Ok(resp) => reply_text(format!("status {}", resp.get("StatusCode").and_then(Json::num).unwrap_or(0.0))),
                Err(message) => reply_text(format!("fetch failed: {}", message)),
            }
        }
        other => err("invalid_request", &format!("no command handler {}", other)),
    }
}

fn management_handle(request: &Json) -> (c_int, Json) {
    let path = request.get("Path").and_then(Json::str).unwrap_or("");
    let state = STATE.lock().unwrap();
    let (content_type, body) = if path.ends_with("/index.html") {
        ("text/html; charset=utf-8", format!("<h1>{} from Rust</h1>", state.greeting))
    } else {
        let status = Json::obj(vec![("calls", Json::Num(state.calls as f64)), ("greeting", Json::Str(state.greeting.clone()))]);
        ("application/json", status.to_json())
    };
    ok(Json::obj(vec![
        ("StatusCode", Json::Num(0.0)),
        ("Headers", Json::obj(vec![("Content-Type", Json::Arr(vec![Json::s(content_type)]))])),
        ("Body", Json::Str(b64_encode(body.as_bytes()))),
    ]))
}

fn dispatch(method: &str, request: &Json) -> (c_int, Json) {
    match method {
        "plugin.register" | "plugin.reconfigure" => register(request),
        "management.register" => ok(Json::obj(vec![
            (
                "Routes",
                Json::Arr(vec![Json::obj(vec![
                    ("Method", Json::s("get")),
                    ("Path", Json::s("example-rust/status")),
                    ("Description", Json::s("call counter")),
                ])]),
            ),
            (
                "Resources",
                Json::Arr(vec![
                    Json::obj(vec![("Path", Json::s("index.html")), ("Menu", Json::s("Example Rust"))]),
                    Json::obj(vec![("Path", Json::s("/status")), ("Menu", Json::s("Example Rust status"))]),
                ]),
            ),
        ])),
        "management.handle" => management_handle(request),
        "bot.describe" => describe(),
        "bot.command" => command(request),
        "bot.route" => reply_text("ouch".to_string()),
        "bot.pre_handle" => {
            let text = request.get("event").and_then(|e| e.get("raw_message")).and_then(Json::str).unwrap_or("");
            if text.contains("spam") {
                ok(Json::obj(vec![("action", Json::s("block")), ("reason", Json::s("spam"))]))
            } else {
                ok(Json::obj(vec![("action", Json::s("allow"))]))
            }
        }
        other => err("unknown_method", &format!("unknown method {}", other)),
    }
}

fn into_buffer(text: String, resp: *mut Buffer) {
    let boxed: Box<[u8]> = text.into_bytes().into_boxed_slice();
    let len = boxed.len();
    let ptr = Box::into_raw(boxed) as *mut u8 as *mut c_void;
    unsafe {
        (*resp).ptr = ptr;
        (*resp).len = len;
    }
}

unsafe extern "C" fn plugin_call(method: *const c_char, req: *const u8, len: usize, resp: *mut Buffer) -> c_int {
    if resp.is_null() {
        return 1;
    }
    if method.is_null() {
        into_buffer(err("invalid_method", "method is NULL").1.to_json(), resp);
        return 1;
    }
    let method = CStr::from_ptr(method).to_string_lossy().into_owned();
    let body = if req.is_null() { Vec::new() } else { std::slice::from_raw_parts(req, len).to_vec() };
    let outcome = catch_unwind(|| {
        let request = if body.is_empty() {
            Ok(Json::Obj(vec![]))
        } else {
            std::str::from_utf8(&body).map_err(|e| e.to_string()).and_then(parse)
        };
        match request {
            Ok(request) => dispatch(&method, &request),
            Err(message) => err("invalid_request", &message),
        }
    });
    let (rc, envelope) = outcome.unwrap_or_else(|_| err("plugin_error", "the plugin panicked"));
    into_buffer(envelope.to_json(), resp);
    rc
}

unsafe extern "C" fn plugin_free(ptr: *mut c_void, len: usize) {
    if !ptr.is_null() {
        drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr as *mut u8, len)));
    }
}

unsafe extern "C" fn plugin_shutdown() {}

/// # Safety
/// Called by the host with valid `host` and `plugin` pointers, as the ABI requires.
#[no_mangle]
pub unsafe extern "C" fn cliproxy_plugin_init(host: *const HostApi, plugin: *mut PluginApi) -> c_int {
    if host.is_null() || plugin.is_null() || (*host).abi_version != ABI_VERSION {
        return 1;
    }
    HOST.store(host as *mut HostApi, Ordering::Release);
    (*plugin).abi_version = ABI_VERSION;
    (*plugin).call = Some(plugin_call);
    (*plugin).free_buffer = Some(plugin_free);
    (*plugin).shutdown = Some(plugin_shutdown);
    0
}
