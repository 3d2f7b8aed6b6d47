/*
 * command: the step from protocol to session. Each line a person sends is
 * rate-limited, parsed (with the capabilities they were granted) and turned
 * into one session action, or refused with an ERR. The server hands
 * command_handler to every session it creates, as its connection's events.
 */
#ifndef TURNCHAT_COMMAND_H
#define TURNCHAT_COMMAND_H

#include "connection.h"

struct session;

extern const struct connection_handler command_handler;

/* Logs how many lines were refused beyond those logged one by one (see
 * quota.h): once a window is over, or at once with force. */
void command_log_refusals(struct session *session, bool force);

#endif
