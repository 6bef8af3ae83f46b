/* SPDX-License-Identifier: GPL-2.0 */
/* One HTTP(S) request with libcurl, for the probes and the webhook. Blocking: threads call it. */
#ifndef VG_HTTP_H
#define VG_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <curl/curl.h>

struct vg_http_req {
	const char *url;
	const char *post_json;      /* NULL: GET */
	const char *ifname;         /* bind to this interface unless the host is loopback */
	const char *ca_file;        /* NULL: the system's CAs; verification is always on */
	unsigned timeout_ms;
	const atomic_bool *stop;    /* aborts a transfer in flight */
};

/*
 * Returns 0 on a 2xx answer with up to *len bytes of its body in body (*len is
 * updated), else -EIO/-ECANCELED with the cause in err ("connect: ...",
 * "HTTP 503").
 */
int vg_http_request(const struct vg_http_req *req, char *body, size_t *len, char *err, size_t errlen);

/*
 * A CURLOPT_XFERINFOFUNCTION with a const atomic_bool * (or NULL) as its
 * data: aborts the transfer once the flag is set. libcurl calls it about
 * once a second even while no data flows, so an idle stream stops too.
 */
int vg_http_stop_progress(void *stop, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d);

/*
 * libcurl's functions, from libcurl.so.4 loaded on the first call (by
 * whichever thread makes it; curl_global_init runs then, once). The binary
 * does not link libcurl: an agent with no probe, webhook or Docker engine
 * never maps it, nor the TLS, LDAP and Kerberos libraries it brings, about
 * 5 MB of resident memory. systemd loads its optional libraries this way.
 * NULL when libcurl cannot be loaded, with the cause in err.
 */
struct vg_curl {
	__typeof__(curl_easy_init) *easy_init;
	__typeof__(curl_easy_setopt) *easy_setopt;
	__typeof__(curl_easy_perform) *easy_perform;
	__typeof__(curl_easy_getinfo) *easy_getinfo;
	__typeof__(curl_easy_cleanup) *easy_cleanup;
	__typeof__(curl_easy_strerror) *easy_strerror;
	__typeof__(curl_slist_append) *slist_append;
	__typeof__(curl_slist_free_all) *slist_free_all;
	__typeof__(curl_url) *url;
	__typeof__(curl_url_set) *url_set;
	__typeof__(curl_url_get) *url_get;
	__typeof__(curl_url_cleanup) *url_cleanup;
	__typeof__(curl_free) *free;
};

const struct vg_curl *vg_curl(char *err, size_t errlen);

#endif
