/*
 * rtpgen: the RTP side of the relay call benchmark (tests/bench/relay-calls.ts). One UDP socket per call leg
 * on 127.0.0.1, each sending G.711 (PCMU, 160-byte payload) every 20 ms like a phone, and counting what it
 * receives. Written in C because 1,200 calls are 120,000 packets/s out and 120,000 in: a Node.js generator
 * would need most of a core for that alone on a 2-core machine and become the bottleneck it is meant to
 * measure. Legs are spread over the 20 ms period (one 1 ms slot each) so the load is smooth, not a burst.
 *
 * Control: one command per line on stdin, one answer per line on stdout.
 *   open <n>                    -> "opened <first-id> <port> <port> ..."  (n new legs, ids first-id.. )
 *   start <id> <port> <peer-id> -> "ok"  send to 127.0.0.1:<port>; packets received must carry the peer's SSRC
 *   stopall                     -> "ok"  every leg stops sending (receiving goes on)
 *   stats                       -> "stats <sent> <received> <misrouted> <started> <silent> <worst-lost>
 *                                         <late-ms-max> <late-ticks> <delay-p99-ms> <delay-max-ms> <late-packets>
 *                                         <skipped-slots>"
 *      silent: started legs that received nothing; worst-lost: the largest (peer sent - this leg received)
 *      over all legs; late-ms-max / late-ticks: how far (and how often: ticks > 5 ms late) the 1 ms send clock fell behind, i.e.
 *      whether this generator itself kept pace; delay: one-way delay of received packets (each carries its
 *      send time; arrival is the kernel's timestamp at the receiving socket), p99 and max in ms (2000 = 2 s or more); late-packets: received 150 ms or more after they were
 *      sent, which a phone's jitter buffer would have thrown away; skipped-slots: 1 ms send slots dropped
 *      because this generator fell more than a period behind (it did not get the CPU to keep pace).
 *   quit
 * Build: cc -O2 -o rtpgen rtpgen.c (the benchmark does it in a temp dir).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PERIOD_SLOTS 20 /* 20 ms packetisation, one slot per ms */
#define PAYLOAD 160
#define MAX_LEGS 20000
#define SSRC_BASE 0x47530000u

struct leg {
  int fd;
  int active;
  int started;
  int peer;
  struct sockaddr_in dest;
  uint16_t seq;
  uint32_t ts;
  uint64_t sent;
  uint64_t received;
};

static struct leg legs[MAX_LEGS];
static int nlegs = 0;
static int epfd;
static uint64_t misrouted = 0;
static uint64_t late_ticks = 0;
static uint64_t skipped_slots = 0;
/* one-way delay of received packets (send time travels in the payload), 1 ms buckets */
#define DELAY_BUCKETS 2001
#define LATE_MS 150
static uint64_t delay_hist[DELAY_BUCKETS];
static uint64_t late_packets = 0;
static double late_ms_max = 0;

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

static int open_leg(void) {
  if (nlegs >= MAX_LEGS) return -1;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  /* the kernel stamps each packet as it reaches the socket: the delay measured then excludes this process's
     own lateness in reading it (it shares two cores with everything it measures) */
  int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    close(fd);
    return -1;
  }
  socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  int id = nlegs++;
  struct leg *l = &legs[id];
  memset(l, 0, sizeof *l);
  l->fd = fd;
  l->peer = -1;
  l->seq = (uint16_t)(id * 7919);
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)id + 1};
  epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
  return ntohs(a.sin_port);
}

/* Wall clock, the clock of the kernel's receive timestamps (SO_TIMESTAMPNS). */
static uint64_t now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

static void send_slot(int slot) {
  unsigned char pkt[12 + PAYLOAD];
  memset(pkt + 12, 0xff, PAYLOAD); /* PCMU silence, but for the send time in its first 8 bytes */
  uint64_t sent_at = now_us();
  memcpy(pkt + 12, &sent_at, sizeof sent_at);
  for (int id = slot; id < nlegs; id += PERIOD_SLOTS) {
    struct leg *l = &legs[id];
    if (!l->active) continue;
    uint32_t ssrc = SSRC_BASE + (uint32_t)id;
    pkt[0] = 0x80;
    pkt[1] = l->sent == 0 ? 0x80 : 0x00; /* marker on the first packet, PT 0 */
    pkt[2] = (unsigned char)(l->seq >> 8);
    pkt[3] = (unsigned char)l->seq;
    pkt[4] = (unsigned char)(l->ts >> 24);
    pkt[5] = (unsigned char)(l->ts >> 16);
    pkt[6] = (unsigned char)(l->ts >> 8);
    pkt[7] = (unsigned char)l->ts;
    pkt[8] = (unsigned char)(ssrc >> 24);
    pkt[9] = (unsigned char)(ssrc >> 16);
    pkt[10] = (unsigned char)(ssrc >> 8);
    pkt[11] = (unsigned char)ssrc;
    if (sendto(l->fd, pkt, sizeof pkt, 0, (struct sockaddr *)&l->dest, sizeof l->dest) == (ssize_t)sizeof pkt)
      l->sent++;
    /* A failed send (buffer full) is not counted as sent: the receiver would count it as lost otherwise, and
       it is this generator's failure, which late-ticks shows. */
    l->seq++;
    l->ts += PAYLOAD;
  }
}

static void receive(int id) {
  struct leg *l = &legs[id];
  struct mmsghdr msgs[16];
  struct iovec iov[16];
  unsigned char bufs[16][256];
  char ctrl[16][CMSG_SPACE(sizeof(struct timespec))];
  for (;;) {
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < 16; i++) {
      iov[i].iov_base = bufs[i];
      iov[i].iov_len = sizeof bufs[i];
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_control = ctrl[i];
      msgs[i].msg_hdr.msg_controllen = sizeof ctrl[i];
    }
    int n = recvmmsg(l->fd, msgs, 16, MSG_DONTWAIT, NULL);
    if (n <= 0) return;
    for (int i = 0; i < n; i++) {
      if (msgs[i].msg_len < 12) continue;
      unsigned char *p = bufs[i];
      uint32_t ssrc = ((uint32_t)p[8] << 24) | ((uint32_t)p[9] << 16) | ((uint32_t)p[10] << 8) | p[11];
      if (l->peer >= 0 && ssrc != SSRC_BASE + (uint32_t)l->peer) {
        misrouted++;
        continue;
      }
      l->received++;
      if (msgs[i].msg_len >= 20) {
        uint64_t sent_at;
        memcpy(&sent_at, p + 12, sizeof sent_at);
        uint64_t now = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
          if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof ts);
            now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
          }
        }
        if (now == 0) now = now_us();
        uint64_t ms = now > sent_at ? (now - sent_at) / 1000u : 0;
        if (ms >= LATE_MS) late_packets++;
        delay_hist[ms < DELAY_BUCKETS - 1 ? ms : DELAY_BUCKETS - 1]++;
      }
    }
    if (n < 16) return;
  }
}

static char inbuf[1 << 20];
static size_t inlen = 0;

static void reply_stats(void) {
  uint64_t sent = 0, received = 0, worst = 0;
  int started = 0, silent = 0;
  for (int id = 0; id < nlegs; id++) {
    struct leg *l = &legs[id];
    sent += l->sent;
    received += l->received;
    if (!l->started) continue;
    started++;
    if (l->received == 0) silent++;
    if (l->peer >= 0 && legs[l->peer].sent > l->received) {
      uint64_t lost = legs[l->peer].sent - l->received;
      if (lost > worst) worst = lost;
    }
  }
  uint64_t seen = 0, p99 = 0, max = 0;
  for (int b = 0; b < DELAY_BUCKETS; b++) seen += delay_hist[b];
  for (int b = 0; b < DELAY_BUCKETS; b++)
    if (delay_hist[b] != 0) max = (uint64_t)b;
  uint64_t acc = 0;
  for (int b = 0; b < DELAY_BUCKETS; b++) {
    acc += delay_hist[b];
    if (acc * 100 >= seen * 99) {
      p99 = (uint64_t)b;
      break;
    }
  }
  printf("stats %llu %llu %llu %d %d %llu %.1f %llu %llu %llu %llu %llu\n", (unsigned long long)sent,
         (unsigned long long)received, (unsigned long long)misrouted, started, silent, (unsigned long long)worst,
         late_ms_max, (unsigned long long)late_ticks, (unsigned long long)p99, (unsigned long long)max,
         (unsigned long long)late_packets, (unsigned long long)skipped_slots);
}

/* Returns 0 on quit. */
static int command(char *line) {
  if (strncmp(line, "open ", 5) == 0) {
    int n = atoi(line + 5);
    int first = nlegs;
    printf("opened %d", first);
    for (int i = 0; i < n; i++) {
      int port = open_leg();
      printf(" %d", port);
      if (port < 0) break;
    }
    printf("\n");
  } else if (strncmp(line, "start ", 6) == 0) {
    int id = -1, port = 0, peer = -1;
    if (sscanf(line + 6, "%d %d %d", &id, &port, &peer) != 3 || id < 0 || id >= nlegs) {
      printf("error bad start\n");
    } else {
      struct leg *l = &legs[id];
      memset(&l->dest, 0, sizeof l->dest);
      l->dest.sin_family = AF_INET;
      l->dest.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      l->dest.sin_port = htons((uint16_t)port);
      l->peer = peer;
      l->active = 1;
      l->started = 1;
      printf("ok\n");
    }
  } else if (strcmp(line, "stopall") == 0) {
    for (int id = 0; id < nlegs; id++) legs[id].active = 0;
    printf("ok\n");
  } else if (strcmp(line, "stats") == 0) {
    reply_stats();
  } else if (strcmp(line, "quit") == 0) {
    return 0;
  } else {
    printf("error unknown command\n");
  }
  fflush(stdout);
  return 1;
}

/* Returns 0 when stdin closed or quit was read. */
static int read_commands(void) {
  ssize_t n = read(0, inbuf + inlen, sizeof inbuf - inlen - 1);
  if (n <= 0) return n < 0 && errno == EAGAIN;
  inlen += (size_t)n;
  char *start = inbuf;
  char *nl;
  while ((nl = memchr(start, '\n', inlen - (size_t)(start - inbuf))) != NULL) {
    *nl = 0;
    if (!command(start)) return 0;
    start = nl + 1;
  }
  inlen -= (size_t)(start - inbuf);
  memmove(inbuf, start, inlen);
  return 1;
}

int main(void) {
  epfd = epoll_create1(0);
  fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 0};
  epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev);
  double next = now_ms() + 1.0;
  long tick = 0;
  struct epoll_event evs[256];
  for (;;) {
    double t = now_ms();
    if (t >= next) {
      double lag = t - next;
      if (lag > 5.0) late_ticks++; /* 5 ms behind: a packet a quarter period late */
      if (lag > late_ms_max) late_ms_max = lag;
      /* catch up slot by slot (a short stall delays packets but keeps them), one period at most per pass so
         commands and receiving are served in between; a backlog beyond a period is skipped and counted: then
         this generator itself could not keep pace, and those packets are neither sent nor expected */
      int burst = 0;
      while (t >= next && burst < PERIOD_SLOTS) {
        send_slot((int)(tick % PERIOD_SLOTS));
        tick++;
        next += 1.0;
        burst++;
      }
      while (t - next > PERIOD_SLOTS) {
        skipped_slots++;
        tick++;
        next += 1.0;
      }
    }
    double wait = next - now_ms();
    if (wait < 0) wait = 0;
    struct timespec timeout = {.tv_sec = 0, .tv_nsec = (long)(wait * 1e6)};
    int n = epoll_pwait2(epfd, evs, 256, &timeout, NULL);
    for (int i = 0; i < n; i++) {
      uint32_t key = evs[i].data.u32;
      if (key == 0) {
        if (!read_commands()) return 0;
      } else {
        receive((int)key - 1);
      }
    }
  }
}
