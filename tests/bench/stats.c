/*
 * stats: what the bench measures besides its own messages. A latency
 * histogram with a fixed footprint (so recording costs no allocation however
 * long the run), and the server's memory and CPU time read from /proc, which
 * works for any server process, turnchatd or the relay, without its help,
 * and sums over several when the server is more than one (stunnel in
 * front of turnchatd).
 */
#include "bench.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define SUB (1u << HISTOGRAM_SUB_BITS)

static unsigned bucket_of(uint64_t v)
{
	if (v < SUB)
		return (unsigned)v;
	unsigned exp = 63u - (unsigned)__builtin_clzll(v); /* >= HISTOGRAM_SUB_BITS */
	unsigned shift = exp - HISTOGRAM_SUB_BITS;
	return ((shift + 1) << HISTOGRAM_SUB_BITS) | (unsigned)((v >> shift) & (SUB - 1));
}

/* The largest value that falls in bucket b: percentiles never understate. */
static uint64_t bucket_top(unsigned b)
{
	if (b < SUB)
		return b;
	unsigned shift = (b >> HISTOGRAM_SUB_BITS) - 1;
	uint64_t low = (uint64_t)(SUB | (b & (SUB - 1))) << shift;
	return low + ((uint64_t)1 << shift) - 1;
}

void histogram_add(struct histogram *h, uint64_t ns)
{
	h->buckets[bucket_of(ns)]++;
	h->count++;
	if (ns > h->max)
		h->max = ns;
}

uint64_t histogram_percentile(const struct histogram *h, double percent)
{
	if (h->count == 0)
		return 0;
	uint64_t rank = (uint64_t)((double)h->count * percent / 100.0);
	if (rank >= h->count)
		rank = h->count - 1;
	uint64_t seen = 0;
	for (unsigned b = 0; b < HISTOGRAM_BUCKETS; b++) {
		seen += h->buckets[b];
		if (seen > rank) {
			uint64_t top = bucket_top(b);
			return top < h->max ? top : h->max;
		}
	}
	return h->max;
}

/* VmRSS from /proc/PID/status, in KiB; -1 when the process is not there. */
long proc_rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0) {
			kib = strtol(line + 6, NULL, 10);
			break;
		}
	fclose(f);
	return kib;
}

/* utime + stime from /proc/PID/stat, in clock ticks; -1 when unknown. */
long long proc_cpu_ticks(pid_t pid)
{
	char path[64], text[1024];

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	/* The command name may hold spaces and parentheses: fields follow the last ')'. */
	char *p = strrchr(text, ')');
	if (p == NULL)
		return -1;
	unsigned long long utime, stime;
	/* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) !=
	    2)
		return -1;
	return (long long)(utime + stime);
}

long procs_rss_kib(const pid_t *pids, unsigned count)
{
	long sum = count > 0 ? 0 : -1;
	for (unsigned i = 0; i < count && sum >= 0; i++) {
		long kib = proc_rss_kib(pids[i]);
		sum = kib < 0 ? -1 : sum + kib;
	}
	return sum;
}

long long procs_cpu_ticks(const pid_t *pids, unsigned count)
{
	long long sum = count > 0 ? 0 : -1;
	for (unsigned i = 0; i < count && sum >= 0; i++) {
		long long ticks = proc_cpu_ticks(pids[i]);
		sum = ticks < 0 ? -1 : sum + ticks;
	}
	return sum;
}

double self_cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* The inode of a TCP socket listening on port, from /proc/net/tcp or tcp6. */
static unsigned long listening_inode(const char *table, unsigned port)
{
	char line[512];
	unsigned long inode = 0;
	FILE *f = fopen(table, "r");
	if (f == NULL)
		return 0;
	while (inode == 0 && fgets(line, sizeof(line), f)) {
		char local[128];
		unsigned state;
		unsigned long ino;
		/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
		if (sscanf(line, "%*s %127s %*s %x %*s %*s %*s %*s %*s %lu", local, &state, &ino) !=
		    3)
			continue;
		char *colon = strrchr(local, ':');
		if (colon && state == 0x0a && strtoul(colon + 1, NULL, 16) == port)
			inode = ino;
	}
	fclose(f);
	return inode;
}

/* The process holding the socket that listens on port; 0 when none is found. */
pid_t proc_find_listener(unsigned port)
{
	unsigned long inode = listening_inode("/proc/net/tcp", port);
	if (inode == 0)
		inode = listening_inode("/proc/net/tcp6", port);
	if (inode == 0)
		return 0;

	char want[64];
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	pid_t found = 0;
	DIR *proc = opendir("/proc");
	if (proc == NULL)
		return 0;
	for (struct dirent *d; found == 0 && (d = readdir(proc));) {
		pid_t pid = (pid_t)strtol(d->d_name, NULL, 10);
		if (pid <= 0 || pid == getpid())
			continue;
		char dir[64];
		snprintf(dir, sizeof(dir), "/proc/%ld/fd", (long)pid);
		DIR *fds = opendir(dir);
		if (fds == NULL)
			continue;
		for (struct dirent *e; found == 0 && (e = readdir(fds));) {
			char path[sizeof(dir) + sizeof(e->d_name) + 1], link[64];
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			ssize_t n = readlink(path, link, sizeof(link) - 1);
			if (n > 0) {
				link[n] = '\0';
				if (strcmp(link, want) == 0)
					found = pid;
			}
		}
		closedir(fds);
	}
	closedir(proc);
	return found;
}
