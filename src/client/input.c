/*
 * input: the person's side of the chat module, called by chat.c for every
 * line the ui hands over (typed, pasted, or a line of a script) and
 * whenever the turn may have come. A message or /me always goes into the
 * outbox first and leaves it oldest first, one per turn in turns mode, all
 * at once in free mode, so that nothing is joined, dropped or refused for
 * being early. Commands are answered here and never sent as typed: /help
 * (what works now), /queue, /unqueue, /me, /done and /q.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_internal.h"

/* The partner is told we type at most this often while typing goes on... */
#define INPUT_TYPING_EVERY_MS 2000
/* ...and as soon as the server passes it on again (once a second) after a line. */
#define INPUT_TYPING_RELAYED_MS 1000

static bool may_send_now(const struct chat *chat)
{
	return chat->state == CHAT_PAIRED && !chat->quit_sent && !chat->done_sent &&
	       (chat->turn == UI_MY_TURN || chat->turn == UI_FREE);
}

/* Shows "N. text" for a queued line, or one never sent. */
static void show_numbered(struct chat *chat, size_t number, const struct outbox_line *line)
{
	struct buffer text;
	char head[48];
	int n = snprintf(head, sizeof(head), "%zu. %s", number,
			 line->kind == OUTBOX_ACTION ? "/me " : "");

	buffer_init(&text, line->len + sizeof(head));
	buffer_append(&text, head, (size_t)n);
	buffer_append(&text, line->text, line->len);
	chat_show(chat, UI_NOTICE, NULL, buffer_peek(&text), buffer_length(&text));
	buffer_release(&text);
}

static void send_message(struct chat *chat, const struct outbox_line *line)
{
	struct buffer *out = connection_output(chat->conn);
	bool action = line->kind == OUTBOX_ACTION;
	chat_send(chat, action ? protocol_append_command(out, "me", line->text)
			       : protocol_append_message(out, line->text, line->len));
	if (chat->state == CHAT_ENDED)
		return;
	chat->sent++;
	receipt_sent(chat, line->kind, line->text, line->len);
	/* The line ended the partner's hint: the next line's typing is news. */
	if (chat->typing_due_at > chat->typing_sent_at + INPUT_TYPING_RELAYED_MS)
		chat->typing_due_at = chat->typing_sent_at + INPUT_TYPING_RELAYED_MS;
	/* Into the transcript as it goes; a script's own lines are its input already. */
	if (ui_is_terminal(chat->ui))
		chat_show(chat, action ? UI_OWN_ACTION : UI_OWN_LINE, chat->options->name, line->text,
			  line->len);
	if (chat->mode == CHAT_MODE_TURNS && chat->turn == UI_MY_TURN) {
		chat_set_turn(chat, UI_PEER_TURN);
		chat_say(chat, UI_NOTICE, "Waiting for %s's reply...", chat->peer);
	}
}

static void send_done(struct chat *chat)
{
	chat->done_after_queue = false;
	chat_send(chat, protocol_append_command(connection_output(chat->conn), "done", NULL));
	if (chat->state == CHAT_ENDED)
		return;
	receipt_sent(chat, OUTBOX_DONE, "", 0);
	chat->done_sent = true;
	if (chat->turn == UI_MY_TURN || chat->turn == UI_PEER_TURN)
		chat->turn = UI_FREE; /* no turns left to take */
	if (ui_is_terminal(chat->ui))
		chat_say(chat, UI_NOTICE,
			 "You said /done: nothing more goes from you, %s's lines still arrive. "
			 "/q leaves.",
			 chat->peer);
	chat_update_status(chat);
}

void input_flush(struct chat *chat)
{
	struct outbox_line line;

	while (may_send_now(chat) && outbox_take_first(&chat->outbox, &line)) {
		if (line.kind == OUTBOX_ACTION && !chat->caps_pending && !(chat->caps & CAP_ACTION)) {
			chat_say(chat, UI_PROBLEM, "Not sent: this server does not support /me:");
			show_numbered(chat, 1, &line);
			chat->lost++;
		} else {
			send_message(chat, &line);
		}
		free(line.text);
	}
	/* /done needs no turn, only a partner and nothing queued before it. */
	if (chat->done_after_queue && outbox_count(&chat->outbox) == 0 &&
	    chat->state == CHAT_PAIRED && !chat->quit_sent)
		send_done(chat);
	if (chat->state != CHAT_ENDED)
		chat_update_status(chat);
}

static void queue_line(struct chat *chat, const char *text, size_t len, bool action)
{
	if (chat->done_sent || chat->done_after_queue) {
		chat_say(chat, UI_PROBLEM,
			 "Not sent: you said /done, so nothing more goes from you.");
		chat->lost++;
		return;
	}
	if (action && !chat->caps_pending && chat->state != CHAT_GREETING &&
	    !(chat->caps & CAP_ACTION)) {
		chat_say(chat, UI_PROBLEM, "Not sent: this server does not support /me.");
		chat->lost++;
		return;
	}
	if (outbox_push(&chat->outbox, text, len, action ? OUTBOX_ACTION : OUTBOX_MESSAGE) < 0) {
		chat_say(chat, UI_PROBLEM, "Not sent: %zu lines are queued already; that is enough.",
			 outbox_count(&chat->outbox));
		chat->lost++;
		return;
	}
	input_flush(chat);
}

void input_report_unsent(struct chat *chat, const char *why, bool take_typed)
{
	size_t count = outbox_count(&chat->outbox);
	char *typed = take_typed ? ui_take_input(chat->ui) : NULL;
	struct outbox_line line;
	bool more;
	size_t unread = ui_unsent_input(chat->ui, &more);

	/* A script's input the conversation ended before: lost, and it is told. */
	if (unread > 0) {
		chat_say(chat, UI_PROBLEM, "turnchat: %zu line%s of your input %s not sent%s", unread,
			 unread == 1 ? "" : "s", unread == 1 ? "was" : "were",
			 more ? " (and perhaps more)" : "");
		chat->lost += unread;
	}
	if (typed) {
		chat_say(chat, UI_NOTICE, "%s: not sent, the line you were typing:", why);
		chat_show(chat, UI_NOTICE, NULL, typed, strlen(typed));
		free(typed);
	}
	if (count == 0)
		return;
	chat_say(chat, UI_NOTICE, "%s: %zu queued line%s %s not sent:", why, count,
		 count == 1 ? "" : "s", count == 1 ? "was" : "were");
	for (size_t i = 1; outbox_take_first(&chat->outbox, &line); i++) {
		show_numbered(chat, i, &line);
		free(line.text);
	}
	chat->lost += count;
	chat->done_after_queue = false;
}

static void list_queue(struct chat *chat)
{
	size_t count = outbox_count(&chat->outbox);
	if (count == 0) {
		chat_say(chat, UI_NOTICE, "Nothing is queued.");
		return;
	}
	chat_say(chat, UI_NOTICE, "Queued, to be sent in this order%s:",
		 chat->turn == UI_UNPAIRED ? " once you have a partner" : ", one per turn");
	for (size_t i = 0; i < count; i++)
		show_numbered(chat, i + 1, outbox_peek(&chat->outbox, i));
	chat_say(chat, UI_NOTICE,
		 "/unqueue takes the last one back to edit; /queue clear drops them.");
}

/* The newest queued line goes back into the input line, as it was typed. */
static void unqueue(struct chat *chat)
{
	struct outbox_line line;
	if (!ui_is_terminal(chat->ui) || !outbox_take_last(&chat->outbox, &line)) {
		chat_say(chat, UI_NOTICE, "Nothing is queued.");
		return;
	}
	const char *head = line.kind == OUTBOX_ACTION ? "/me " : line.text[0] == '/' ? "/" : "";
	size_t head_len = strlen(head);
	char *typed = malloc(head_len + line.len + 1);
	if (typed) {
		memcpy(typed, head, head_len);
		memcpy(typed + head_len, line.text, line.len + 1);
		ui_set_input(chat->ui, typed, head_len + line.len);
		free(typed);
	}
	free(line.text);
	chat_say(chat, UI_NOTICE,
		 "Your last queued line is back in the input line; %zu still queued.",
		 outbox_count(&chat->outbox));
	chat_update_status(chat);
}

static void clear_queue(struct chat *chat)
{
	size_t count = outbox_clear(&chat->outbox);
	chat->done_after_queue = false;
	if (count == 0)
		chat_say(chat, UI_NOTICE, "Nothing is queued.");
	else
		chat_say(chat, UI_NOTICE, "Dropped %zu queued line%s; nothing was sent.", count,
			 count == 1 ? "" : "s");
	chat_update_status(chat);
}

static void done(struct chat *chat)
{
	if (!chat->caps_pending && chat->state != CHAT_GREETING && !(chat->caps & CAP_DONE))
		chat_say(chat, UI_NOTICE, "This server does not support /done; /q leaves.");
	else if (chat->done_sent || chat->done_after_queue)
		chat_say(chat, UI_NOTICE, "You said /done already.");
	else if (outbox_count(&chat->outbox) > 0 || chat->state != CHAT_PAIRED) {
		/* After what is queued, and once there is a partner to say it to. */
		size_t queued = outbox_count(&chat->outbox);
		chat->done_after_queue = true;
		if (queued > 0)
			chat_say(chat, UI_NOTICE, "/done goes after your %zu queued line%s.", queued,
				 queued == 1 ? "" : "s");
		else
			chat_say(chat, UI_NOTICE, "/done goes once you have a partner.");
		input_flush(chat);
	} else {
		send_done(chat);
	}
}

/* /help: what works now, for the state the conversation is in. */
static void help(struct chat *chat)
{
	bool terminal = ui_is_terminal(chat->ui);
	bool action = chat->caps_pending || (chat->caps & CAP_ACTION);
	bool can_done = (chat->caps_pending || (chat->caps & CAP_DONE)) && !chat->done_sent;
	const char *peer = chat->peer;

	if (chat->done_sent)
		chat_say(chat, UI_NOTICE, "You said /done: %s's lines still arrive; /q leaves.",
			 peer);
	else if (chat->turn == UI_UNPAIRED)
		chat_say(chat, UI_NOTICE,
			 "You are waiting for a partner. Lines you finish now are "
			 "queued and go once you are paired.");
	else if (chat->turn == UI_MY_TURN)
		chat_say(chat, UI_NOTICE, "It is your turn: the next line you finish goes to %s.",
			 peer);
	else if (chat->turn == UI_PEER_TURN)
		chat_say(chat, UI_NOTICE,
			 "It is %s's turn: lines you finish now are queued and go one per turn.",
			 peer);
	else if (chat->turn == UI_FREE)
		chat_say(chat, UI_NOTICE, "Every line you finish goes to %s at once.", peer);
	chat_say(chat, UI_NOTICE, "/q or /quit: leave%s.",
		 outbox_count(&chat->outbox) ? " (queued lines are listed, not sent)" : "");
	if (action && !chat->done_sent)
		chat_say(chat, UI_NOTICE, "/me ACTION: an action, shown as \"* %s ACTION\".",
			 chat->options->name);
	if (can_done)
		chat_say(chat, UI_NOTICE,
			 "/done: send nothing more but keep reading; the "
			 "conversation ends when both are done.");
	if (terminal)
		chat_say(chat, UI_NOTICE,
			 "/queue: list queued lines; /queue clear: drop them; "
			 "/unqueue: take the last one back to edit.");
	chat_say(chat, UI_NOTICE, "//text: send a line that starts with /.");
	if (terminal)
		chat_say(chat, UI_NOTICE,
			 "Keys: Enter sends; Ctrl-D (on an empty line) or Ctrl-C "
			 "leave; Up and Down recall earlier lines; TAB is a TAB.");
}

static void command(struct chat *chat, const char *line, size_t len)
{
	const char *space = memchr(line, ' ', len);
	size_t word = space ? (size_t)(space - line) : len;
	const char *arg = space ? space + 1 : NULL;
	size_t arg_len = space ? len - word - 1 : 0;

#define IS(name) (word == sizeof(name) - 1 && memcmp(line, name, word) == 0)
	if ((IS("/q") || IS("/quit")) && !arg)
		chat_leave(chat, false);
	else if (IS("/help"))
		help(chat);
	else if (IS("/queue") && !arg)
		list_queue(chat);
	else if (IS("/queue") && arg_len == 5 && memcmp(arg, "clear", 5) == 0)
		clear_queue(chat);
	else if (IS("/unqueue") && !arg)
		unqueue(chat);
	else if (IS("/done") && !arg)
		done(chat);
	else if (IS("/me") && arg_len > 0)
		queue_line(chat, arg, arg_len, true);
	else if (IS("/me"))
		chat_say(chat, UI_NOTICE, "/me needs an action, as in /me waves.");
	else
		chat_say(chat, UI_NOTICE,
			 "Unknown command '%.*s'; /help lists what works now. Type // to send a line "
			 "starting with /.",
			 (int)(word > 32 ? 32 : word), line);
#undef IS
}

void input_line(struct chat *chat, const char *line, size_t len)
{
	if (chat->state == CHAT_ENDED || len == 0)
		return;
	if (chat->quit_sent) {
		chat_say(chat, UI_NOTICE, "Not sent: you are leaving.");
		return;
	}
	if (protocol_is_message(line, len))
		queue_line(chat, line[0] == '/' ? line + 1 : line, line[0] == '/' ? len - 1 : len,
			   false);
	else
		command(chat, line, len);
}

void input_too_long(struct chat *chat, size_t max)
{
	chat_say(chat, UI_PROBLEM, "turnchat: a line of input is longer than %zu bytes; not sent",
		 max);
	chat->lost++;
}

void input_typing(struct chat *chat)
{
	uint64_t now = event_now_ms(chat->loop);

	if (!chat->options->typing || !(chat->caps & CAP_TYPING) || chat->state != CHAT_PAIRED ||
	    chat->quit_sent || chat->done_sent || now < chat->typing_due_at)
		return;
	chat->typing_sent_at = now;
	chat->typing_due_at = now + INPUT_TYPING_EVERY_MS;
	chat_send(chat, protocol_append_command(connection_output(chat->conn), "typing", NULL));
}

void input_eof(struct chat *chat)
{
	/* In free mode (or once the partner is done) a script that said all it had
	 * still reads to the end: /done, when the server knows it. */
	bool free_to_talk = chat->mode == CHAT_MODE_FREE || chat->peer_done;
	if (free_to_talk && (chat->caps & CAP_DONE) && chat->state == CHAT_PAIRED) {
		if (!chat->done_sent && !chat->done_after_queue)
			done(chat);
	} else if (receipt_pending(chat) > 0 && chat->state == CHAT_PAIRED) {
		/* A script exits 0 only when ACK covers all its lines: the partner's
		 * client acknowledges within a second, so it is worth the wait. */
		chat->resume.leave_when_delivered = true;
	} else {
		chat_leave(chat, false);
	}
}
