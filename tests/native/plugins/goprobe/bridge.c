// C side of the Go test plugin: the ABI entry point and trampolines into exported Go functions.
#include "plughost_plugin.h"
#include "_cgo_export.h"

static const cliproxy_host_api *g_host;

static int call_tramp(const char *method, const uint8_t *req, size_t len, cliproxy_buffer *resp) {
    return goPluginCall((char *)method, (uint8_t *)req, len, resp);
}

static void free_tramp(void *ptr, size_t len) { goPluginFree(ptr, len); }

int cliproxy_plugin_init(const cliproxy_host_api *host, cliproxy_plugin_api *api) {
    if (host == NULL || host->abi_version != CLIPROXY_PLUGIN_ABI_VERSION) return 1;
    g_host = host;
    api->abi_version = CLIPROXY_PLUGIN_ABI_VERSION;
    api->call = call_tramp;
    api->free_buffer = free_tramp;
    api->shutdown = NULL;
    return 0;
}

int host_call(const char *method, const char *req, size_t len, cliproxy_buffer *resp) {
    return g_host->call(g_host->host_ctx, method, (const uint8_t *)req, len, resp);
}

void host_free(void *ptr, size_t len) { g_host->free_buffer(ptr, len); }
