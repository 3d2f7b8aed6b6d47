/*
 * prompt: the terminal's prompt from the conversation's status (see
 * prompt.h); called by ui_terminal whenever chat changes the status or the
 * window changes width.
 */
#include "prompt.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "display.h"

/* Appends one ", "-separated part of the prompt's parenthesis. */
static void add_part(char *parts, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void add_part(char *parts, size_t size, const char *fmt, ...)
{
	size_t used = strlen(parts);
	va_list ap;
	if (used > 0 && used + 2 < size) {
		strcpy(parts + used, ", ");
		used += 2;
	}
	va_start(ap, fmt);
	vsnprintf(parts + used, size - used, fmt, ap);
	va_end(ap);
}

static bool too_wide(const char *prompt, unsigned cols)
{
	return cols > 0 && display_width(prompt, strlen(prompt)) + PROMPT_ROOM > cols;
}

void prompt_build(char *out, size_t size, const char *name, const struct ui_status *status,
		  const char *ellipsis, unsigned cols)
{
	char parts[512] = "";
	const char *peer = status->peer ? status->peer : "";
	unsigned t = status->waited;

	if (status->turn == UI_LEAVING) {
		out[0] = '\0';
		return;
	}
	if (status->reconnecting)
		add_part(parts, sizeof(parts), "reconnecting%s", ellipsis);
	if (status->turn == UI_UNPAIRED && status->waiting && t >= 3600)
		add_part(parts, sizeof(parts), "waiting %u:%02u:%02u", t / 3600, t / 60 % 60, t % 60);
	else if (status->turn == UI_UNPAIRED && status->waiting)
		add_part(parts, sizeof(parts), "waiting %u:%02u", t / 60, t % 60);
	else if (status->turn == UI_UNPAIRED)
		add_part(parts, sizeof(parts), "joining");
	if (status->turn == UI_PEER_TURN)
		add_part(parts, sizeof(parts), "%s's turn", peer);
	if (status->peer_typing && status->turn == UI_PEER_TURN)
		add_part(parts, sizeof(parts), "typing%s", ellipsis);
	else if (status->peer_typing)
		add_part(parts, sizeof(parts), "%s is typing%s", peer, ellipsis);
	if (status->queued > 0)
		add_part(parts, sizeof(parts), "%zu queued", status->queued);
	if (status->done)
		add_part(parts, sizeof(parts), "done");
	snprintf(out, size, parts[0] ? "%s (%s)> " : "%s> ", name, parts);
	/* A prompt as wide as the window leaves no room to type, and readline
	 * then loses track of its rows: in a narrow window the name goes, then
	 * the rest. */
	if (too_wide(out, cols))
		snprintf(out, size, parts[0] ? "(%s)> " : "> ", parts);
	if (too_wide(out, cols))
		snprintf(out, size, "> ");
}
