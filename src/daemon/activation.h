/*
 * activation: the one module that talks to the service manager through
 * libsystemd: sockets handed over at start (socket activation), state
 * notifications (READY, STATUS, RELOADING, STOPPING, WATCHDOG), and the
 * file descriptor store that keeps the conversations' state (state.c)
 * across restarts. Built without libsystemd, it finds no sockets, keeps
 * nothing and notifies nobody.
 */
#ifndef TURNCHAT_ACTIVATION_H
#define TURNCHAT_ACTIVATION_H

#include <stdbool.h>
#include <stdint.h>

struct listener;

/*
 * Adds every listening stream socket the service manager passed, made
 * non-blocking: to tls when it is named "tls" (FileDescriptorName=) or
 * listens on tls_port, else to plain. Returns how many, or -1 when a
 * passed socket cannot be used (reported through the log).
 */
int activation_adopt_sockets(struct listener *plain, struct listener *tls, unsigned tls_port);

/* The state memfd the service manager kept for us (FDNAME=state), passed
 * with the sockets; -1 if none. Once: the caller owns it. */
int activation_take_state(void);
/* Whether a service manager may keep a state for us (NOTIFY_SOCKET). */
bool activation_can_keep_state(void);
/* Hands fd to the store (FDSTORE=1, FDNAME=state); -1 on failure. */
int activation_keep_state(int fd);
/* Takes it out again: a state that could not be read is not passed on. */
void activation_forget_state(void);

void activation_ready(void);
void activation_reloading(void);
void activation_stopping(void);
void activation_status(unsigned waiting, unsigned conversations, unsigned clients);

/* How often to send WATCHDOG=1, in milliseconds; 0 when nobody watches. */
uint64_t activation_watchdog_interval_ms(void);
void activation_watchdog(void);

#endif
