// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <curl/curl.h>
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
static bool host_is_loopback(const char *url)
{
	CURLU *u = curl_url();
	char *host = NULL;
	bool lo = false;

	if (u && !curl_url_set(u, CURLUPART_URL, url, 0) && !curl_url_get(u, CURLUPART_HOST, &host, 0))
		lo = !strncmp(host, "127.", 4) || !strcmp(host, "[::1]") || !strcmp(host, "localhost");
	curl_free(host);
	curl_url_cleanup(u);
	return lo;
}

int vg_http_request(const struct vg_http_req *req, char *body, size_t *len, char *err, size_t errlen)
{
	struct sink sink = { body, 0, body ? *len : 0 };
	char curl_err[CURL_ERROR_SIZE] = "", iface[32];
	struct curl_slist *hdrs = NULL;
	CURL *c = curl_easy_init();
	CURLcode rc;
	long status = 0;

	if (!c) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	curl_easy_setopt(c, CURLOPT_URL, req->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
	curl_easy_setopt(c, CURLOPT_USERAGENT, VG_USER_AGENT);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, vg_http_stop_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, req->stop);
	if (req->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, req->ca_file);
	if (req->ifname && !host_is_loopback(req->url)) {
		/* "if!": the interface only, never an address of that name. */
		snprintf(iface, sizeof(iface), "if!%s", req->ifname);
		curl_easy_setopt(c, CURLOPT_INTERFACE, iface);
	}
	if (req->post_json) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->post_json);
	}
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	if (rc == CURLE_ABORTED_BY_CALLBACK) {
		snprintf(err, errlen, "stopped");
		return -ECANCELED;
	}
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "%s", curl_err[0] ? curl_err : curl_easy_strerror(rc));
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

int vg_http_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) ? -EIO : 0;
}
