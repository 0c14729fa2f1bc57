/* An OpenIPMI ipmi_sim plugin adding DCMI Get Power Reading (group extension 0xDC), with the watts read from a
 * file on every request (from shared/notes/real-components.md section 3); used by scripts/qemu_ipmi/run.ts. */
/* dcmi_power.c — build: gcc -O2 -Wall -fPIC -shared -o dcmi_power.so dcmi_power.c   (needs libopenipmi-dev) */
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
#include <OpenIPMI/serv.h>
#include <OpenIPMI/mcserv.h>

static char power_file[512];
static unsigned int min_w = 0xffff, max_w;
static unsigned long long sum_w, n_w;

static unsigned int read_power(void) {
    unsigned int w = 250;
    FILE *f = power_file[0] ? fopen(power_file, "r") : NULL;
    if (f) { if (fscanf(f, "%u", &w) != 1) w = 250; fclose(f); }
    return w;
}
static void put16(unsigned char *p, unsigned int v) { p[0] = v & 0xff; p[1] = (v >> 8) & 0xff; }
static void put32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (v >> (8 * i)) & 0xff; }

static void handle_dcmi(lmc_data_t *mc, msg_t *msg, unsigned char *rdata,
                        unsigned int *rdata_len, void *cb_data) {
    (void)cb_data;
    if (msg->cmd == 0x01) {            /* Get DCMI Capabilities Info */
        unsigned char r[] = {0, 0xDC, 1, 5, 2, 0x00, 0x01, 0x00, 0x00};
        memcpy(rdata, r, sizeof r); *rdata_len = sizeof r;
    } else if (msg->cmd == 0x02) {     /* Get Power Reading */
        unsigned int w = read_power();
        if (w < min_w) min_w = w;
        if (w > max_w) max_w = w;
        sum_w += w; n_w++;
        rdata[0] = 0; rdata[1] = 0xDC;
        put16(rdata + 2, w); put16(rdata + 4, min_w); put16(rdata + 6, max_w);
        put16(rdata + 8, (unsigned int)(sum_w / n_w));
        put32(rdata + 10, (uint32_t)time(NULL)); put32(rdata + 14, 1000);
        rdata[18] = 0x40;              /* power measurement active */
        *rdata_len = 19;
    } else {
        handle_invalid_cmd(mc, rdata, rdata_len);
    }
}

int ipmi_sim_module_init(sys_data_t *sys, const char *initstr) {
    (void)sys;
    if (initstr) strncpy(power_file, initstr, sizeof power_file - 1);
    ipmi_emu_register_group_extension_handler(0xDC, handle_dcmi, NULL);
    return 0;
}
int ipmi_sim_module_post_init(sys_data_t *sys) { (void)sys; return 0; }
