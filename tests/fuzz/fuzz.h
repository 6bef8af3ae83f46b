/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the fuzz targets share: the input as a C string, and the checks every
 * output for a person must pass. A failed check aborts, which libFuzzer
 * reports as a crash with its input.
 */
#ifndef VG_FUZZ_H
#define VG_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond, ...)                                   \
	do {                                                    \
		if (!(cond)) {                                  \
			fprintf(stderr, "check failed: " #cond ": " __VA_ARGS__); \
			fputc('\n', stderr);                    \
			abort();                                \
		}                                               \
	} while (0)

/* A copy with a NUL after it, in a block of its own size: a read past it is ASan's to see. */
static inline char *fuzz_string(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = 0;
	return s;
}

/*
 * Shown to a person: valid UTF-8, no C0 or C1 control, DEL, bidirectional
 * or line-separator format character. Written apart from the escaping it
 * checks, from the Unicode tables, not from user/lib/event_fmt.c.
 */
static inline void fuzz_assert_inert(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		uint32_t c;
		int n;

		if (*p < 0x80) {
			FUZZ_CHECK(*p >= 0x20 && *p != 0x7f, "control byte 0x%02x in '%s'", *p, s);
			p++;
			continue;
		}
		if (*p >= 0xc2 && *p <= 0xdf) {
			n = 2, c = *p & 0x1f;
		} else if (*p >= 0xe0 && *p <= 0xef) {
			n = 3, c = *p & 0x0f;
		} else {
			FUZZ_CHECK(*p >= 0xf0 && *p <= 0xf4, "bad lead byte 0x%02x in '%s'", *p, s);
			n = 4, c = *p & 0x07;
		}
		for (int i = 1; i < n; i++) {
			FUZZ_CHECK((p[i] & 0xc0) == 0x80, "cut UTF-8 in '%s'", s);
			c = c << 6 | (p[i] & 0x3f);
		}
		FUZZ_CHECK((n != 3 || c >= 0x800) && (n != 4 || (c >= 0x10000 && c <= 0x10ffff)),
			   "overlong UTF-8 in '%s'", s);
		FUZZ_CHECK(c > 0x9f && !(c >= 0xd800 && c <= 0xdfff), "C1 control or surrogate in '%s'", s);
		FUZZ_CHECK(c != 0x061c && c != 0x200e && c != 0x200f && !(c >= 0x2028 && c <= 0x202e) &&
			   !(c >= 0x2066 && c <= 0x2069), "format character U+%04x in '%s'", (unsigned)c, s);
		p += n;
	}
}

/* Splits data at NUL bytes into at most max words (copies); returns how many. */
static inline int fuzz_words(const uint8_t *data, size_t size, char **words, int max)
{
	int n = 0;

	for (size_t i = 0; i < size && n < max;) {
		const uint8_t *end = memchr(data + i, 0, size - i);
		size_t len = end ? (size_t)(end - (data + i)) : size - i;

		words[n++] = fuzz_string(data + i, len);
		i += len + 1;
	}
	return n;
}

static inline void fuzz_free_words(char **words, int n)
{
	for (int i = 0; i < n; i++)
		free(words[i]);
}

#endif
