/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One-line diagnostics on stderr.  The level is checked before the arguments are evaluated,
 * so debug logging on the per-frame path costs a branch when it is off.
 */
#ifndef WSAUDIT_LOG_H
#define WSAUDIT_LOG_H

enum log_level {
	LOG_ERR,
	LOG_WARN,
	LOG_INFO,
	LOG_DEBUG,
};

extern enum log_level log_max_level;

void log_emit(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_at(level, ...)                            \
	do {                                          \
		if ((level) <= log_max_level)         \
			log_emit(level, __VA_ARGS__); \
	} while (0)

#define log_err(...) log_at(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)

#endif /* WSAUDIT_LOG_H */
