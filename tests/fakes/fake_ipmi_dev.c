/* A fake of the kernel's OpenIPMI device interface (ipmi_devintf) for tests: exports ioctl, poll and close
 * so ffi/ipmi.ts can load it in place of libc. It decodes requests with the kernel's own struct definitions
 * (linux/ipmi.h), logs them to $FAKE_IPMI_LOG, and answers with the response bytes in $FAKE_IPMI_RESPONSE
 * (hex, completion code first). $FAKE_IPMI_MODE: normal | silent (never answers) | stale (an event and a
 * stale response come first) | enotty (the fd is not an IPMI device).
 * Build: gcc -O2 -Wall -fPIC -shared -o libfakeipmi.so fake_ipmi_dev.c
 */
#include <errno.h>
#include <linux/ipmi.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

typedef struct { int recv_type; long msgid; unsigned char netfn, cmd; unsigned char data[256]; int len; } qmsg_t;
static qmsg_t queue[8];
static int qlen;

static const char *mode(void) { const char *m = getenv("FAKE_IPMI_MODE"); return m ? m : "normal"; }

static void logf_(const char *fmt, ...) {
    const char *p = getenv("FAKE_IPMI_LOG");
    if (!p) return;
    FILE *f = fopen(p, "a");
    if (!f) return;
    va_list ap; va_start(ap, fmt); vfprintf(f, fmt, ap); va_end(ap);
    fclose(f);
}

static void push(int type, long msgid, unsigned char netfn, unsigned char cmd, const char *hex) {
    if (qlen >= 8) return;
    qmsg_t *m = &queue[qlen++];
    m->recv_type = type; m->msgid = msgid; m->netfn = netfn; m->cmd = cmd; m->len = 0;
    for (const char *p = hex; p[0] && p[1] && m->len < 256;) {
        if (p[0] == ' ') { p++; continue; }
        unsigned int b; sscanf(p, "%2x", &b); m->data[m->len++] = b; p += 2;
    }
}

static int send_command(struct ipmi_req *req) {
    if (req->addr_len != sizeof(struct ipmi_system_interface_addr)) { errno = EINVAL; return -1; }
    struct ipmi_system_interface_addr *a = (void *)req->addr;
    char data[3 * 256 + 1] = "";
    for (int i = 0; i < req->msg.data_len && i < 256; i++) sprintf(data + 2 * i, "%02x", req->msg.data[i]);
    logf_("send addr_type=%02x channel=%02x lun=%d netfn=%02x cmd=%02x msgid=%ld data=%s\n", a->addr_type, a->channel,
          a->lun, req->msg.netfn, req->msg.cmd, req->msgid, data);
    if (a->addr_type != IPMI_SYSTEM_INTERFACE_ADDR_TYPE || a->channel != IPMI_BMC_CHANNEL) { errno = EINVAL; return -1; }
    if (!strcmp(mode(), "silent")) return 0;
    const char *rsp = getenv("FAKE_IPMI_RESPONSE");
    if (!rsp) rsp = "00dc3801380138013801ddcc086be803000040";
    if (!strcmp(mode(), "stale")) {
        push(IPMI_ASYNC_EVENT_RECV_TYPE, 0, 0x0a, 0x44, "0102");
        push(IPMI_RESPONSE_RECV_TYPE, req->msgid - 1, req->msg.netfn | 1, req->msg.cmd, "00dc0100");
    }
    push(IPMI_RESPONSE_RECV_TYPE, req->msgid, req->msg.netfn | 1, req->msg.cmd, rsp);
    return 0;
}

static int receive(struct ipmi_recv *r) {
    if (qlen == 0) { errno = EAGAIN; return -1; }
    qmsg_t m = queue[0];
    memmove(queue, queue + 1, sizeof(qmsg_t) * (--qlen));
    struct ipmi_system_interface_addr a = {IPMI_SYSTEM_INTERFACE_ADDR_TYPE, IPMI_BMC_CHANNEL, 0};
    if (r->addr_len < sizeof a) { errno = EINVAL; return -1; }
    memcpy(r->addr, &a, sizeof a);
    r->addr_len = sizeof a;
    r->recv_type = m.recv_type; r->msgid = m.msgid; r->msg.netfn = m.netfn; r->msg.cmd = m.cmd;
    int rv = 0;
    int n = m.len;
    if (n > r->msg.data_len) { n = r->msg.data_len; rv = -1; errno = EMSGSIZE; } /* TRUNC semantics */
    memcpy(r->msg.data, m.data, n);
    r->msg.data_len = n;
    return rv;
}

int ioctl(int fd, unsigned long req, ...) {
    va_list ap; va_start(ap, req); void *arg = va_arg(ap, void *); va_end(ap);
    (void)fd;
    if (!strcmp(mode(), "enotty")) { errno = ENOTTY; return -1; }
    if (req == IPMICTL_SEND_COMMAND) return send_command(arg);
    if (req == IPMICTL_RECEIVE_MSG_TRUNC) return receive(arg);
    logf_("unexpected ioctl 0x%lx\n", req);
    errno = ENOTTY;
    return -1;
}

int poll(struct pollfd *fds, nfds_t n, int timeout) {
    if (n != 1) { errno = EINVAL; return -1; }
    fds[0].revents = 0;
    if (qlen > 0) { fds[0].revents = POLLIN; return 1; }
    if (timeout > 0) usleep((useconds_t)timeout * 1000);
    return 0;
}

int close(int fd) { logf_("close %d\n", fd); return 0; }
