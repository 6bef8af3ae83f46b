/* SPDX-License-Identifier: GPL-2.0 */
/*
 * URLs in messages: a webhook's or probe's URL may hold a secret (a token in
 * the query, a password before the host), and stderr goes to the journal,
 * the log records to a file others may read. Pure.
 */
#ifndef VG_REDACT_H
#define VG_REDACT_H

#include <stddef.h>

/*
 * url for messages: userinfo and the value of every query parameter and the
 * fragment replaced by <redacted> ("https://<redacted>@host/topic?token=<redacted>"),
 * everything escaped as vg_text_escape (event_fmt.h) does. Keys, host and path stay, so
 * the message still says which URL failed. Returns buf.
 */
char *vg_url_redact(const char *url, char *buf, size_t len);

#endif
