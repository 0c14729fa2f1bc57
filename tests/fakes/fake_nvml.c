/* A fake libnvidia-ml.so.1 for tests: the NVML entry points ceems uses, answering from a text file named by
 * $FAKE_NVML_CONFIG (re-read on every call, so tests can change readings) and appending calls to $FAKE_NVML_LOG.
 *
 * Config lines (numbers default to the H100 of /work/shared/data/nvml-h100.json):
 *   init <code>                       return code of nvmlInit_v2
 *   driver <version>
 *   gpu <uuid> <power_mW|E<code>> <energy_mJ|E<code>> <mig_current> <max_mig> <name...>
 *   mig <gpu_index> <slot> <uuid> <gpu_instance_id> <power_mW|E<code>> <energy_mJ|E<code>>
 * Build: gcc -O2 -Wall -fPIC -shared -o libnvidia-ml.so.1 fake_nvml.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXGPU 8
#define MAXMIG 7

typedef struct { int is_mig; int gpu; int slot; } handle_t;
typedef struct { int present; char uuid[96]; long long power; long long energy; int gi; } mig_t;
typedef struct {
    char uuid[96]; char name[96]; long long power; long long energy; int mig_current; int max_mig;
    mig_t migs[MAXMIG];
} gpu_t;

static handle_t gpu_handles[MAXGPU];
static handle_t mig_handles[MAXGPU][MAXMIG];
static gpu_t gpus[MAXGPU];
static int ngpu;
static int init_code;
static int initialised;
static char driver[80] = "580.159.04";

static void logcall(const char *what) {
    const char *p = getenv("FAKE_NVML_LOG");
    if (!p) return;
    FILE *f = fopen(p, "a");
    if (f) { fprintf(f, "%s\n", what); fclose(f); }
}

/* "E<code>" encodes an error as a negative value. */
static long long num(const char *s) { return s[0] == 'E' ? -atoll(s + 1) : atoll(s); }

static void load(void) {
    const char *p = getenv("FAKE_NVML_CONFIG");
    memset(gpus, 0, sizeof gpus);
    ngpu = 0; init_code = 0;
    FILE *f = p ? fopen(p, "r") : NULL;
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char a[96], b[96], c[96], d[96], name[96];
        int m, x, gi, gpu, slot;
        line[strcspn(line, "\n")] = 0;
        if (sscanf(line, "init %d", &init_code) == 1) continue;
        if (sscanf(line, "driver %79s", driver) == 1) continue;
        if (ngpu < MAXGPU && sscanf(line, "gpu %95s %95s %95s %d %d %95[^\n]", a, b, c, &m, &x, name) == 6) {
            gpu_t *g = &gpus[ngpu++];
            snprintf(g->uuid, sizeof g->uuid, "%s", a);
            snprintf(g->name, sizeof g->name, "%s", name);
            g->power = num(b); g->energy = num(c); g->mig_current = m; g->max_mig = x;
            continue;
        }
        if (sscanf(line, "mig %d %d %95s %d %95s %95s", &gpu, &slot, a, &gi, b, d) == 6 &&
            gpu >= 0 && gpu < ngpu && slot >= 0 && slot < MAXMIG) {
            mig_t *mg = &gpus[gpu].migs[slot];
            mg->present = 1; mg->gi = gi; mg->power = num(b); mg->energy = num(d);
            snprintf(mg->uuid, sizeof mg->uuid, "%s", a);
        }
    }
    fclose(f);
}

static int resolve(void *h, gpu_t **g, mig_t **mg) {
    handle_t *hd = h;
    if (!initialised) return 1;                      /* NVML_ERROR_UNINITIALIZED */
    if (!hd) return 2;                               /* NVML_ERROR_INVALID_ARGUMENT */
    load();
    if (hd->gpu >= ngpu) return 15;                  /* NVML_ERROR_GPU_IS_LOST */
    *g = &gpus[hd->gpu];
    *mg = hd->is_mig ? &gpus[hd->gpu].migs[hd->slot] : NULL;
    if (*mg && !(*mg)->present) return 15;
    return 0;
}

int nvmlInit_v2(void) { logcall("init"); load(); if (init_code) return init_code; initialised = 1; return 0; }
int nvmlShutdown(void) { logcall("shutdown"); if (!initialised) return 1; initialised = 0; return 0; }

const char *nvmlErrorString(int r) {
    switch (r) {
    case 0: return "Success";
    case 1: return "Uninitialized";
    case 2: return "Invalid Argument";
    case 3: return "Not Supported";
    case 6: return "Not Found";
    case 9: return "Driver Not Loaded";
    case 15: return "GPU is lost";
    default: return "Unknown Error";
    }
}

int nvmlSystemGetDriverVersion(char *buf, unsigned int len) {
    if (!initialised) return 1;
    snprintf(buf, len, "%s", driver);
    return 0;
}

int nvmlDeviceGetCount_v2(unsigned int *n) { if (!initialised) return 1; load(); *n = ngpu; return 0; }

int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void **h) {
    if (!initialised) return 1;
    load();
    if (i >= (unsigned)ngpu) return 2;
    gpu_handles[i].is_mig = 0; gpu_handles[i].gpu = i;
    *h = &gpu_handles[i];
    return 0;
}

int nvmlDeviceGetUUID(void *h, char *buf, unsigned int len) {
    gpu_t *g; mig_t *mg; int r = resolve(h, &g, &mg); if (r) return r;
    snprintf(buf, len, "%s", mg ? mg->uuid : g->uuid);
    return 0;
}

int nvmlDeviceGetName(void *h, char *buf, unsigned int len) {
    gpu_t *g; mig_t *mg; int r = resolve(h, &g, &mg); if (r) return r;
    snprintf(buf, len, mg ? "%s MIG" : "%s", g->name);
    return 0;
}

int nvmlDeviceGetPowerUsage(void *h, unsigned int *mw) {
    gpu_t *g; mig_t *mg; int r = resolve(h, &g, &mg); if (r) return r;
    long long v = mg ? mg->power : g->power;
    if (v < 0) return (int)-v;
    *mw = (unsigned int)v;
    return 0;
}

int nvmlDeviceGetTotalEnergyConsumption(void *h, unsigned long long *mj) {
    gpu_t *g; mig_t *mg; int r = resolve(h, &g, &mg); if (r) return r;
    long long v = mg ? mg->energy : g->energy;
    if (v < 0) return (int)-v;
    *mj = (unsigned long long)v;
    return 0;
}

int nvmlDeviceGetMigMode(void *h, unsigned int *cur, unsigned int *pend) {
    gpu_t *g; mig_t *mg; int r = resolve(h, &g, &mg); if (r) return r;
    if (mg) return 3;
    *cur = g->mig_current; *pend = g->mig_current;
    return 0;
}

int nvmlDeviceGetMaxMigDeviceCount(void *h, unsigned int *n) {
    gpu_t *g; mig_t *mg; int r = resolve(h, &g, &mg); if (r) return r;
    *n = mg ? 0 : g->max_mig;
    return 0;
}

int nvmlDeviceGetMigDeviceHandleByIndex(void *h, unsigned int i, void **out) {
    gpu_t *g; mig_t *mg; int r = resolve(h, &g, &mg); if (r) return r;
    if (mg || !g->mig_current) return 3;
    if (i >= MAXMIG || (int)i >= g->max_mig) return 2;
    if (!g->migs[i].present) return 6;                /* NVML_ERROR_NOT_FOUND: empty slot */
    handle_t *hd = &mig_handles[((handle_t *)h)->gpu][i];
    hd->is_mig = 1; hd->gpu = ((handle_t *)h)->gpu; hd->slot = i;
    *out = hd;
    return 0;
}

int nvmlDeviceGetGpuInstanceId(void *h, unsigned int *id) {
    gpu_t *g; mig_t *mg; int r = resolve(h, &g, &mg); if (r) return r;
    if (!mg) return 2;
    *id = mg->gi;
    return 0;
}
