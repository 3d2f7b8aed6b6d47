/*
 * ui: dispatch to the kind of ui in use, called by chat; the life both kinds
 * share (the watch on stdin, the memory); and the look of a line
 * (ui_format), shared by ui_plain and ui_terminal.
 */
#include "ui.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "display.h"

#define UI_PEER_COLOR "\033[1;36m"
#define UI_OWN_COLOR "\033[1;32m"
#define UI_NO_COLOR "\033[0m"
/* Starts every notice on a terminal: no partner's line can start with it,
 * since theirs start with their name and a colon. */
#define UI_MARKER "-- "

void *ui_new(size_t size, const struct ui_ops *ops, const struct ui_style *style,
	     const struct ui_handler *handler, void *ctx)
{
	struct ui *ui = calloc(1, size);
	if (ui)
		*ui = (struct ui){.ops = ops, .style = *style, .handler = handler, .ctx = ctx};
	return ui;
}

void ui_destroy(struct ui *ui)
{
	if (ui == NULL)
		return;
	ui->ops->release(ui);
	event_source_remove(ui->source);
	free(ui);
}

void ui_show(struct ui *ui, enum ui_kind kind, const char *name, const char *text, size_t len)
{
	ui->ops->show(ui, kind, name, text, len);
}

void ui_set_status(struct ui *ui, const struct ui_status *status)
{
	ui->ops->set_status(ui, status);
}

void ui_resize(struct ui *ui)
{
	if (ui->ops->resize)
		ui->ops->resize(ui);
}

void ui_poll(struct ui *ui)
{
	if (ui->ops->poll)
		ui->ops->poll(ui);
}

bool ui_is_terminal(const struct ui *ui)
{
	return ui->terminal;
}

char *ui_take_input(struct ui *ui)
{
	return ui->ops->take_input ? ui->ops->take_input(ui) : NULL;
}

void ui_set_input(struct ui *ui, const char *text, size_t len)
{
	if (ui->ops->set_input)
		ui->ops->set_input(ui, text, len);
}

size_t ui_unsent_input(struct ui *ui, bool *more)
{
	*more = false;
	return ui->ops->unsent_input ? ui->ops->unsent_input(ui, more) : 0;
}

static int append(struct buffer *out, const char *text)
{
	return buffer_append(out, text, strlen(text));
}

/* "name: " or "* name ", coloured when wanted; returns its columns, or -1. */
static int append_name(struct buffer *out, const struct ui_style *style, enum ui_kind kind,
		       const char *name)
{
	bool action = kind == UI_PEER_ACTION || kind == UI_OWN_ACTION;
	bool own = kind == UI_OWN_LINE || kind == UI_OWN_ACTION;
	int rc = action ? append(out, "* ") : 0;

	if (rc == 0 && style->color)
		rc = append(out, own ? UI_OWN_COLOR : UI_PEER_COLOR);
	if (rc == 0)
		rc = append(out, name);
	if (rc == 0 && !action)
		rc = append(out, ":");
	if (rc == 0 && style->color)
		rc = append(out, UI_NO_COLOR);
	if (rc == 0)
		rc = append(out, " ");
	return rc < 0 ? -1 : (int)display_width(name, strlen(name)) + (action ? 3 : 2);
}

int ui_format(struct buffer *out, const struct ui_style *style, bool marked, enum ui_kind kind,
	      const char *name, const char *text, size_t len, unsigned cols)
{
	unsigned col = 0;

	if (style->timestamps) {
		char stamp[16];
		time_t now = time(NULL);
		struct tm tm;
		localtime_r(&now, &tm);
		size_t n = strftime(stamp, sizeof(stamp), "[%H:%M] ", &tm);
		if (buffer_append(out, stamp, n) < 0)
			return -1;
		col += (unsigned)n;
	}
	if (kind == UI_NOTICE || kind == UI_PROBLEM) {
		if (marked) {
			if (append(out, UI_MARKER) < 0)
				return -1;
			col += (unsigned)strlen(UI_MARKER);
		}
	} else {
		int width = append_name(out, style, kind, name);
		if (width < 0)
			return -1;
		col += (unsigned)width;
	}
	/* Continuation rows start under the text, right of the name or marker. */
	return display_wrap(out, text, len, col, col, cols);
}
