/*
 * ui: dispatch to the kind of ui in use; called by chat.
 */
#include "ui.h"

void ui_destroy(struct ui *ui)
{
	if (ui)
		ui->ops->destroy(ui);
}

void ui_show(struct ui *ui, const char *line, size_t len)
{
	ui->ops->show(ui, line, len);
}

void ui_set_turn(struct ui *ui, enum ui_turn turn, const char *peer)
{
	ui->ops->set_turn(ui, turn, peer);
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
