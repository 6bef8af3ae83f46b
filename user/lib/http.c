// SPDX-License-Identifier: GPL-2.0
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <curl/curl.h>
#include "dl.h"
#include "http.h"

#define VG_USER_AGENT "vpnguard-bpf/0.2"

struct sink {
	char *buf;
	size_t len, cap;
};

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t take = size * n;

	/* An answer larger than an address is not an IP echo: keep the start, refuse later. */
	if (s->len >= s->cap)
		take = 0;
	else if (take > s->cap - s->len)
		take = s->cap - s->len;
	if (s->buf && take)
		memcpy(s->buf + s->len, data, take);
	s->len += size * n;
	return size * n;
}

int vg_http_stop_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	(void)a, (void)b, (void)c, (void)d;
	return arg && atomic_load((const atomic_bool *)arg);
}

/* Loopback hosts are local control servers (gluetun's), not reached through the tunnel. */
static bool host_is_loopback(const struct vg_curl *cu, const char *url)
{
	CURLU *u = cu->url();
	char *host = NULL;
	bool lo = false;

	if (u && !cu->url_set(u, CURLUPART_URL, url, 0) && !cu->url_get(u, CURLUPART_HOST, &host, 0))
		lo = !strncmp(host, "127.", 4) || !strcmp(host, "[::1]") || !strcmp(host, "localhost");
	cu->free(host);
	cu->url_cleanup(u);
	return lo;
}

int vg_http_request(const struct vg_http_req *req, char *body, size_t *len, char *err, size_t errlen)
{
	struct sink sink = { body, 0, body ? *len : 0 };
	char curl_err[CURL_ERROR_SIZE] = "", iface[32];
	struct curl_slist *hdrs = NULL;
	const struct vg_curl *cu = vg_curl(err, errlen);
	CURL *c = cu ? cu->easy_init() : NULL;
	CURLcode rc;
	long status = 0;

	if (!cu)
		return -EIO;
	if (!c) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	cu->easy_setopt(c, CURLOPT_URL, req->url);
	cu->easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	cu->easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	cu->easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
	cu->easy_setopt(c, CURLOPT_USERAGENT, VG_USER_AGENT);
	cu->easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
	cu->easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	cu->easy_setopt(c, CURLOPT_WRITEDATA, &sink);
	cu->easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	cu->easy_setopt(c, CURLOPT_XFERINFOFUNCTION, vg_http_stop_progress);
	cu->easy_setopt(c, CURLOPT_XFERINFODATA, req->stop);
	if (req->ca_file)
		cu->easy_setopt(c, CURLOPT_CAINFO, req->ca_file);
	if (req->ifname && !host_is_loopback(cu, req->url)) {
		/* "if!": the interface only, never an address of that name. */
		snprintf(iface, sizeof(iface), "if!%s", req->ifname);
		cu->easy_setopt(c, CURLOPT_INTERFACE, iface);
	}
	if (req->post_json) {
		hdrs = cu->slist_append(hdrs, "Content-Type: application/json");
		cu->easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
		cu->easy_setopt(c, CURLOPT_POSTFIELDS, req->post_json);
	}
	rc = cu->easy_perform(c);
	cu->easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	cu->slist_free_all(hdrs);
	cu->easy_cleanup(c);
	if (rc == CURLE_ABORTED_BY_CALLBACK) {
		snprintf(err, errlen, "stopped");
		return -ECANCELED;
	}
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "%s", curl_err[0] ? curl_err : cu->easy_strerror(rc));
		return -EIO;
	}
	if (status < 200 || status > 299) {
		snprintf(err, errlen, "HTTP %ld", status);
		return -EIO;
	}
	if (body && sink.len > sink.cap) {
		snprintf(err, errlen, "answer longer than %zu bytes", sink.cap);
		return -EIO;
	}
	if (len)
		*len = sink.len;
	return 0;
}

static struct vg_curl curl_fns;
static char curl_failed[256];

#define RESOLVE(field) vg_dl_resolve(lib, "curl_" #field, &curl_fns.field)

static void load_curl(void)
{
	void *lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	__typeof__(curl_global_init) *global_init;

	if (!lib) {
		snprintf(curl_failed, sizeof(curl_failed), "%s", dlerror());
		return;
	}
	if (!RESOLVE(easy_init) || !RESOLVE(easy_setopt) || !RESOLVE(easy_perform) ||
	    !RESOLVE(easy_getinfo) || !RESOLVE(easy_cleanup) || !RESOLVE(easy_strerror) ||
	    !RESOLVE(slist_append) || !RESOLVE(slist_free_all) || !RESOLVE(url) ||
	    !RESOLVE(url_set) || !RESOLVE(url_get) || !RESOLVE(url_cleanup) || !RESOLVE(free) ||
	    !vg_dl_resolve(lib, "curl_global_init", &global_init)) {
		snprintf(curl_failed, sizeof(curl_failed), "libcurl.so.4: %s", dlerror());
		return;
	}
	if (global_init(CURL_GLOBAL_DEFAULT))
		snprintf(curl_failed, sizeof(curl_failed), "libcurl.so.4: curl_global_init failed");
}

const struct vg_curl *vg_curl(char *err, size_t errlen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, load_curl);
	if (!curl_failed[0])
		return &curl_fns;
	snprintf(err, errlen, "%s", curl_failed);
	return NULL;
}
