#define _GNU_SOURCE
/* A test plugin that exercises every corner of the ABI. Variants are selected with -D:
 *   PROBE_NO_INIT, PROBE_INIT_RC, PROBE_ABI2, PROBE_NULL_CALL, PROBE_NULL_FREE,
 *   PROBE_BAD_META, PROBE_NO_CAPS, PROBE_SCHEMA4, PROBE_REGISTER_FAILS
 * Methods: see probe_call below. Every reply is allocated with a length header so
 * free_buffer can verify it receives the exact length. */
#include "plughost_plugin.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const cliproxy_host_api *g_host;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_released;      /* "release" sets it; "block" waits for it */
static int g_shutdown;      /* shutdown() sets it */
static int g_active, g_max_active, g_met;
static long g_allocs, g_frees, g_bad_frees, g_null_requests, g_reconfigures;
static char g_config[4096];

static void *reply_alloc(size_t len) {
    size_t *p = malloc(sizeof(size_t) * 2 + len + 1);
    p[0] = len;
    p[1] = 0x50524f4245ul; /* "PROBE" */
    pthread_mutex_lock(&g_mu);
    g_allocs++;
    pthread_mutex_unlock(&g_mu);
    return p + 2;
}

static void probe_free(void *ptr, size_t len) {
    size_t *p = (size_t *)ptr - 2;
    pthread_mutex_lock(&g_mu);
    g_frees++;
    if (p[0] != len || p[1] != 0x50524f4245ul) g_bad_frees++;
    pthread_mutex_unlock(&g_mu);
    p[1] = 0;
    free(p);
}

static int reply_bytes(cliproxy_buffer *resp, const char *data, size_t len) {
    char *out = reply_alloc(len);
    memcpy(out, data, len);
    resp->ptr = out;
    resp->len = len;
    return 0;
}

static int reply(cliproxy_buffer *resp, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *out = reply_alloc((size_t)n);
    va_start(ap, fmt);
    vsnprintf(out, (size_t)n + 1, fmt, ap);
    va_end(ap);
    resp->ptr = out;
    resp->len = (size_t)n;
    return 0;
}

/* Call the host; return its reply as a malloc'd NUL-terminated string (or an rc marker). */
static char *host_call(void *ctx, const char *method, const char *req) {
    cliproxy_buffer resp = {(void *)0x1, 99}; /* the host must zero it */
    int rc = g_host->call(ctx, method, (const uint8_t *)req, req ? strlen(req) : 0, &resp);
    char *out;
    if (rc != 0) {
        out = malloc(64);
        snprintf(out, 64, "{\"host_rc\":%d,\"zeroed\":%s}", rc, resp.ptr == NULL && resp.len == 0 ? "true" : "false");
        return out;
    }
    out = malloc(resp.len + 1);
    memcpy(out, resp.ptr, resp.len);
    out[resp.len] = 0;
    g_host->free_buffer(resp.ptr, resp.len);
    return out;
}

/* Find "key":"value" in JSON text and copy the raw (still escaped) string value. */
static int json_str(const char *json, size_t len, const char *key, char *out, size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *end = json + len;
    const char *p = json ? memmem(json, len, pat, strlen(pat)) : NULL;
    if (!p) return 0;
    p += strlen(pat);
    size_t i = 0;
    while (p < end && *p != '"' && i + 1 < cap) {
        if (*p == '\\' && p + 1 < end) out[i++] = *p++;
        out[i++] = *p++;
    }
    out[i] = 0;
    return 1;
}

static long json_int(const char *json, size_t len, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = json ? memmem(json, len, pat, strlen(pat)) : NULL;
    return p ? strtol(p + strlen(pat), NULL, 10) : -1;
}

struct later { int fd; int sends; };

static void *call_back_after_shutdown(void *arg) {
    struct later *l = arg;
    pthread_mutex_lock(&g_mu);
    while (!g_shutdown) pthread_cond_wait(&g_cv, &g_mu);
    pthread_mutex_unlock(&g_mu);
    char *r = host_call(g_host->host_ctx, "host.log", "{\"level\":\"info\",\"message\":\"after unload\"}");
    dprintf(l->fd, "%s", r);
    free(r);
    close(l->fd);
    free(l);
    return NULL;
}

static void *send_from_thread(void *arg) {
    struct later *l = arg;
    for (int i = 0; i < l->sends; i++) {
        char req[128];
        snprintf(req, sizeof req, "{\"target\":\"group\",\"group_id\":5,\"message\":\"thread %d\"}", i);
        free(host_call(g_host->host_ctx, "host.bot.send", req));
    }
    dprintf(l->fd, "done");
    close(l->fd);
    free(l);
    return NULL;
}

static int probe_call(const char *method, const uint8_t *req, size_t len, cliproxy_buffer *resp) {
    const char *body = (const char *)req;
    if (method == NULL) return reply(resp, "{\"ok\":false,\"error\":{\"code\":\"invalid_method\",\"message\":\"NULL method\"}}"), 1;
    if (req == NULL) {
        pthread_mutex_lock(&g_mu);
        g_null_requests++;
        pthread_mutex_unlock(&g_mu);
    }
    if (!strcmp(method, "plugin.register") || !strcmp(method, "plugin.reconfigure")) {
        if (!strcmp(method, "plugin.reconfigure")) g_reconfigures++;
        json_str(body, len, "config_yaml", g_config, sizeof g_config);
#if defined(PROBE_REGISTER_FAILS)
        return reply(resp, "{\"ok\":false,\"error\":{\"code\":\"plugin_error\",\"message\":\"license key missing\"}}");
#elif defined(PROBE_SCHEMA4)
        return reply(resp, "{\"ok\":true,\"result\":{\"schema_version\":4,\"metadata\":{\"Name\":\"p\",\"Version\":\"1\",\"Author\":\"a\",\"GitHubRepository\":\"r\"},\"capabilities\":{\"executor\":true}}}");
#elif defined(PROBE_BAD_META)
        return reply(resp, "{\"ok\":true,\"result\":{\"schema_version\":3,\"metadata\":{\"Name\":\"probe\",\"Version\":\"1.0.0\",\"Author\":\"  \",\"GitHubRepository\":\"https://example.invalid/probe\"},\"capabilities\":{\"executor\":true}}}");
#elif defined(PROBE_NO_CAPS)
        return reply(resp, "{\"ok\":true,\"result\":{\"schema_version\":3,\"metadata\":{\"Name\":\"probe\",\"Version\":\"1.0.0\",\"Author\":\"qa\",\"GitHubRepository\":\"https://example.invalid/probe\"},\"capabilities\":{}}}");
#else
        /* mixed-case keys on purpose: result keys are matched case-insensitively */
        return reply(resp, "{\"OK\":true,\"Result\":{\"Schema_Version\":3,\"Metadata\":{\"name\":\"probe\",\"version\":\"1.0.0\",\"author\":\"qa\",\"githubrepository\":\"https://example.invalid/probe\",\"ConfigFields\":[{\"Name\":\"greeting\",\"Type\":\"string\"}]},\"Capabilities\":{\"executor\":true,\"management_api\":true,\"executor_input_formats\":[\"openai\"]}}}");
#endif
    }
    if (!strcmp(method, "bot.command")) { /* sends twice, then fails when handler is "fail" */
        char cbid[128] = "", handler[64] = "";
        json_str(body, len, "host_callback_id", cbid, sizeof cbid);
        json_str(body, len, "handler", handler, sizeof handler);
        for (int i = 1; i <= 2; i++) {
            char req[256];
            snprintf(req, sizeof req, "{\"target\":\"private\",\"user_id\":7,\"message\":\"send %d\",\"host_callback_id\":\"%s\"}", i, cbid);
            free(host_call(g_host->host_ctx, "host.bot.send", req));
        }
        if (!strcmp(handler, "fail")) return reply(resp, "{\"ok\":false,\"error\":{\"code\":\"plugin_error\",\"message\":\"handler failed\"}}");
        if (!strcmp(handler, "weird")) return reply(resp, "{\"ok\":true,\"result\":{\"action\":\"explode\"}}");
        return reply(resp, "{\"ok\":true,\"result\":[{\"type\":\"text\",\"data\":{\"text\":\"seg\"}}]}");
    }
    if (!strcmp(method, "crash")) { /* a segfault: only survivable with isolation = "process" */
        volatile int *nowhere = NULL;
        *nowhere = 1;
    }
    if (!strcmp(method, "pid")) return reply(resp, "{\"ok\":true,\"result\":%ld}", (long)getpid());
    if (!strcmp(method, "echo")) {
        if (req == NULL) return reply(resp, "{\"ok\":true,\"result\":null}");
        return reply(resp, "{\"ok\":true,\"result\":%.*s}", (int)len, body);
    }
    if (!strcmp(method, "config")) return reply(resp, "{\"ok\":true,\"result\":{\"config_yaml\":\"%s\",\"reconfigures\":%ld}}", g_config, g_reconfigures);
    if (!strcmp(method, "stats")) {
        pthread_mutex_lock(&g_mu);
        long a = g_allocs, f = g_frees, b = g_bad_frees, n = g_null_requests;
        int m = g_max_active;
        pthread_mutex_unlock(&g_mu);
        return reply(resp, "{\"ok\":true,\"result\":{\"allocs\":%ld,\"frees\":%ld,\"bad_frees\":%ld,\"null_requests\":%ld,\"max_active\":%d}}",
                     a, f, b, n, m);
    }
    if (!strcmp(method, "management.handle")) { /* a failure or a malformed answer, chosen by the path */
        if (body && memmem(body, len, "/bad_status", 11)) return reply(resp, "{\"ok\":true,\"result\":{\"StatusCode\":1000}}");
        if (body && memmem(body, len, "/bad_body", 9)) return reply(resp, "{\"ok\":true,\"result\":{\"Body\":\"not base64!\"}}");
        if (body && memmem(body, len, "/not_object", 11)) return reply(resp, "{\"ok\":true,\"result\":[1]}");
        return reply(resp, "{\"ok\":false,\"error\":{\"code\":\"plugin_error\",\"message\":\"management failed\"}}");
    }
    if (!strcmp(method, "invalid_json")) return reply(resp, "{\"ok\":tru");
    if (!strcmp(method, "not_object")) return reply(resp, "[1,2]");
    if (!strcmp(method, "rc_envelope")) return reply(resp, "{\"ok\":false,\"error\":{\"code\":\"quota\",\"message\":\"quota exceeded\",\"retryable\":true,\"http_status\":429}}"), 7;
    if (!strcmp(method, "rc_raw")) return reply(resp, "segfault-ish failure"), 9;
    if (!strcmp(method, "rc_empty")) return 5;
    if (!strcmp(method, "error_envelope")) return reply(resp, "{\"ok\":false,\"error\":{\"code\":\"invalid_request\",\"message\":\"missing field x\"}}");
    if (!strcmp(method, "big")) {
        size_t n = 10u * 1024u * 1024u;
        char *out = reply_alloc(n + 32);
        int k = sprintf(out, "{\"ok\":true,\"result\":\"");
        memset(out + k, 'a', n);
        k += (int)n;
        k += sprintf(out + k, "\"}");
        ((size_t *)out)[-2] = (size_t)k; /* the exact length the host must hand back */
        resp->ptr = out;
        resp->len = (size_t)k;
        return 0;
    }
    if (!strcmp(method, "non_utf8")) return reply_bytes(resp, "{\"ok\":true,\"result\":\"\xff\xfe\"}", strlen("{\"ok\":true,\"result\":\"\xff\xfe\"}"));
    if (!strcmp(method, "host_log")) {
        char *r = host_call(g_host->host_ctx, "host.log", "{\"level\":\"warn\",\"message\":\"hello from C\",\"fields\":{\"n\":1}}");
        int rc = reply(resp, "{\"ok\":true,\"result\":%s}", r);
        free(r);
        return rc;
    }
    if (!strcmp(method, "host_raw")) { /* {"method":"…","request":"<raw text>"} */
        char m[128] = {0}, inner[2048] = {0};
        json_str(body, len, "method", m, sizeof m);
        json_str(body, len, "request", inner, sizeof inner);
        /* unescape \" only — enough for the tests */
        char raw[2048];
        size_t j = 0;
        for (size_t i = 0; inner[i] && j + 1 < sizeof raw; i++) {
            if (inner[i] == '\\' && inner[i + 1]) i++;
            raw[j++] = inner[i];
        }
        raw[j] = 0;
        char *r = host_call(g_host->host_ctx, m, raw);
        int rc = reply(resp, "{\"ok\":true,\"result\":%s}", r);
        free(r);
        return rc;
    }
    if (!strcmp(method, "host_null_ctx")) {
        char *r = host_call(NULL, "host.log", "{}");
        int rc = reply(resp, "{\"ok\":true,\"result\":%s}", r);
        free(r);
        return rc;
    }
    if (!strcmp(method, "host_null_method")) {
        char *r = host_call(g_host->host_ctx, NULL, "{}");
        int rc = reply(resp, "{\"ok\":true,\"result\":%s}", r);
        free(r);
        return rc;
    }
    if (!strcmp(method, "block")) { /* waits until "release"; counts concurrent callers */
        pthread_mutex_lock(&g_mu);
        g_active++;
        if (g_active > g_max_active) g_max_active = g_active;
        pthread_cond_broadcast(&g_cv);
        long want = json_int(body, len, "wait_active");
        if (want > 0 && g_active >= want) g_met = 1; /* sticky: every waiter of this round may leave */
        pthread_cond_broadcast(&g_cv);
        while (!g_released && !(want > 0 && g_met)) pthread_cond_wait(&g_cv, &g_mu);
        g_active--;
        pthread_mutex_unlock(&g_mu);
        return reply(resp, "{\"ok\":true,\"result\":\"released\"}");
    }
    if (!strcmp(method, "release")) {
        pthread_mutex_lock(&g_mu);
        g_released = 1;
        pthread_cond_broadcast(&g_cv);
        pthread_mutex_unlock(&g_mu);
        return reply(resp, "{\"ok\":true,\"result\":{}}");
    }
    if (!strcmp(method, "call_back_after_unload")) {
        struct later *l = malloc(sizeof *l);
        l->fd = (int)json_int(body, len, "fd");
        pthread_t t;
        pthread_create(&t, NULL, call_back_after_shutdown, l);
        pthread_detach(t);
        return reply(resp, "{\"ok\":true,\"result\":{}}");
    }
    if (!strcmp(method, "send_from_thread")) {
        struct later *l = malloc(sizeof *l);
        l->fd = (int)json_int(body, len, "fd");
        l->sends = (int)json_int(body, len, "sends");
        pthread_t t;
        pthread_create(&t, NULL, send_from_thread, l);
        pthread_detach(t);
        return reply(resp, "{\"ok\":true,\"result\":{}}");
    }
    return reply(resp, "{\"ok\":false,\"error\":{\"code\":\"unknown_method\",\"message\":\"unknown method %s\"}}", method);
}

static void probe_shutdown(void) {
    pthread_mutex_lock(&g_mu);
    g_shutdown = 1;
    g_released = 1;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
}

#ifndef PROBE_NO_INIT
CLIPROXY_PLUGIN_EXPORT int cliproxy_plugin_init(const cliproxy_host_api *host, cliproxy_plugin_api *plugin) {
    g_host = host;
    if (host == NULL || host->abi_version != CLIPROXY_PLUGIN_ABI_VERSION) return 2;
#ifdef PROBE_INIT_RC
    return 3;
#endif
#ifdef PROBE_ABI2
    plugin->abi_version = 2;
#else
    plugin->abi_version = CLIPROXY_PLUGIN_ABI_VERSION;
#endif
#ifdef PROBE_NULL_CALL
    plugin->call = NULL;
#else
    plugin->call = probe_call;
#endif
#ifdef PROBE_NULL_FREE
    plugin->free_buffer = NULL;
#else
    plugin->free_buffer = probe_free;
#endif
    plugin->shutdown = probe_shutdown;
    return 0;
}
#else
CLIPROXY_PLUGIN_EXPORT int some_other_symbol(void) { return 0; }
#endif
