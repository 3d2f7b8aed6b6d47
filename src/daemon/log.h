/*
 * log: the daemon's messages, to stderr in the foreground and to syslog(3)
 * otherwise, in the OpenBSD style: log_warn adds errno's text, log_warnx
 * does not, fatal/fatalx exit. Every function keeps errno as it was.
 */
#ifndef TURNCHAT_LOG_H
#define TURNCHAT_LOG_H

#include <stdbool.h>

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

void log_init(const char *ident, bool to_stderr, int facility, int level);
void log_set_level(int level);

void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_notice(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
_Noreturn void fatal(const char *fmt, ...) LOG_PRINTF(1, 2);
_Noreturn void fatalx(const char *fmt, ...) LOG_PRINTF(1, 2);

#endif
