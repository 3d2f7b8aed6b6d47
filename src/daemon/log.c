/*
 * log: used by every daemon module that has something to tell the
 * administrator. Messages never carry what people wrote to each other.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

static bool log_to_stderr = true;
static int log_level = LOG_INFO;
static const char *log_ident = "turnchatd";

void log_init(const char *ident, bool to_stderr, int facility, int level)
{
	log_ident = ident;
	log_to_stderr = to_stderr;
	log_level = level;
	if (!to_stderr)
		openlog(ident, LOG_PID | LOG_NDELAY, facility);
}

void log_set_level(int level)
{
	log_level = level;
}

static void log_vwrite(int priority, const char *fmt, va_list ap, const char *suffix)
{
	int saved_errno = errno;
	char message[1024];

	if (priority > log_level) {
		errno = saved_errno;
		return;
	}
	vsnprintf(message, sizeof(message), fmt, ap);
	if (log_to_stderr)
		fprintf(stderr, "%s: %s%s%s\n", log_ident, message, suffix ? ": " : "",
			suffix ? suffix : "");
	else
		syslog(priority, "%s%s%s", message, suffix ? ": " : "", suffix ? suffix : "");
	errno = saved_errno;
}

#define LOG_FUNCTION(fn, priority, with_errno)                         \
	void fn(const char *fmt, ...)                                  \
	{                                                              \
		const char *why = with_errno ? strerror(errno) : NULL; \
		va_list ap;                                            \
		va_start(ap, fmt);                                     \
		log_vwrite(priority, fmt, ap, why);                    \
		va_end(ap);                                            \
	}

LOG_FUNCTION(log_warn, LOG_WARNING, true)
LOG_FUNCTION(log_warnx, LOG_WARNING, false)
LOG_FUNCTION(log_notice, LOG_NOTICE, false)
LOG_FUNCTION(log_info, LOG_INFO, false)
LOG_FUNCTION(log_debug, LOG_DEBUG, false)

void fatal(const char *fmt, ...)
{
	const char *why = strerror(errno);
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(LOG_CRIT, fmt, ap, why);
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(LOG_CRIT, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}
