//! @ID@: a plughost native plugin in Rust (a cdylib, no external crates) with a chat command and
//! a method.
//!
//! The host calls `plugin_call(method, request JSON)`; every answer is {"ok":true,"result":...} or
//! {"ok":false,"error":{"code","message"}}. See plughost's docs/native.md and sdk/c/plughost_plugin.h.
//! JSON is handled by string search to stay dependency-free; a real plugin would use serde_json.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};
use std::panic::catch_unwind;

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
#[allow(dead_code)] // laid out as the host passes it; this plugin calls no host callback
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

/// The raw (still JSON-escaped, so safe to paste into JSON) text of the first string after
/// `"key":` (for an array: its first item); "" when there is none.
fn json_text<'a>(json: &'a str, key: &str) -> &'a str {
    let pattern = format!("\"{}\":", key);
    let rest = match json.find(&pattern) {
        Some(at) => json[at + pattern.len()..].trim_start_matches(|c| c == ' ' || c == '['),
        None => return "",
    };
    let rest = match rest.strip_prefix('"') {
        Some(rest) => rest,
        None => return "",
    };
    let bytes = rest.as_bytes();
    let mut end = 0;
    while end < bytes.len() && bytes[end] != b'"' {
        end += if bytes[end] == b'\\' { 2 } else { 1 };
    }
    &rest[..end.min(bytes.len())]
}

fn or_world(name: &str) -> &str {
    if name.is_empty() {
        "world"
    } else {
        name
    }
}

fn answer(method: &str, request: &str) -> String {
    match method {
        "plugin.register" | "plugin.reconfigure" => concat!(
            r#"{"ok":true,"result":{"schema_version":3,"metadata":{"Name":"@ID@","Version":"0.1.0","#,
            r#""Author":"you","GitHubRepository":"https://example.invalid/@ID@","Logo":"","ConfigFields":[]},"#,
            r#""capabilities":{"bot":true}}}"#
        )
        .to_string(),
        // what the plugin offers in chat: the command /@COMMAND@ [name]
        "bot.describe" => concat!(
            r#"{"ok":true,"result":{"commands":[{"name":"@COMMAND@","description":"say hello (/@COMMAND@ Ada)","#,
            r#""overloads":[{"handler":"hello","params":[{"name":"name","type":"str","required":false}]}]}]}}"#
        )
        .to_string(),
        // a command: {"handler", "args": [...], ...} in, a reply out
        "bot.command" => format!(
            r#"{{"ok":true,"result":{{"action":"reply","text":"hello, {}"}}}}"#,
            or_world(json_text(request, "args"))
        ),
        // the method `hello`: {"name": "Ada"} → {"greeting": "hello, Ada"}
        "hello" => format!(r#"{{"ok":true,"result":{{"greeting":"hello, {}"}}}}"#, or_world(json_text(request, "name"))),
        _ => format!(
            r#"{{"ok":false,"error":{{"code":"unknown_method","message":"unknown method {}"}}}}"#,
            method.replace('"', "'")
        ),
    }
}

unsafe extern "C" fn plugin_call(method: *const c_char, req: *const u8, len: usize, resp: *mut Buffer) -> c_int {
    let method = if method.is_null() { "" } else { CStr::from_ptr(method).to_str().unwrap_or("") };
    let request = if req.is_null() { "" } else { std::str::from_utf8(std::slice::from_raw_parts(req, len)).unwrap_or("") };
    let text = catch_unwind(|| answer(method, request)).unwrap_or_else(|_| {
        r#"{"ok":false,"error":{"code":"plugin_error","message":"the plugin panicked"}}"#.to_string()
    });
    let bytes = text.into_bytes().into_boxed_slice();
    (*resp).len = bytes.len();
    (*resp).ptr = Box::into_raw(bytes) as *mut c_void;
    0
}

unsafe extern "C" fn plugin_free(ptr: *mut c_void, len: usize) {
    if !ptr.is_null() {
        drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr as *mut u8, len)));
    }
}

extern "C" fn plugin_shutdown() {}

/// The ABI's entry point: the host checks the version and takes the plugin's functions.
///
/// # Safety
/// `host` and `plugin` are valid pointers for the call, as the ABI promises.
#[no_mangle]
pub unsafe extern "C" fn cliproxy_plugin_init(host: *const HostApi, plugin: *mut PluginApi) -> c_int {
    if host.is_null() || plugin.is_null() || (*host).abi_version != ABI_VERSION {
        return 1;
    }
    (*plugin).abi_version = ABI_VERSION;
    (*plugin).call = Some(plugin_call);
    (*plugin).free_buffer = Some(plugin_free);
    (*plugin).shutdown = Some(plugin_shutdown);
    0
}
