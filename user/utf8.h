/* SPDX-License-Identifier: GPL-2.0 */
/* UTF-8 validation, shared by the frame parser (text frames, close reasons) and the metrics. */
#ifndef WSAUDIT_UTF8_H
#define WSAUDIT_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Well-formed RFC 3629 UTF-8: no overlongs, no surrogates, nothing above U+10FFFF (what
 * RFC 6455 requires of text and what Go's utf8.ValidString, and so Prometheus, accepts).
 */
bool utf8_valid(const void *data, size_t len);
/*
 * A copy of str (malloc'd) in which every byte that is not part of a well-formed sequence is
 * written as the four characters \xNN: names that come from the traced process (a thread
 * name set with prctl, a file path, a function name) are shown, not dropped.  NULL: no memory.
 */
char *utf8_escape(const char *str);

#endif /* WSAUDIT_UTF8_H */
