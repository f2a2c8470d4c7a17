/*
 * Border following (Suzuki & Abe 1985, the algorithm behind cv2.findContours(RETR_TREE)) of every level mask
 * {q >= v} of an 8-bit map, without storing the contour points: for each contour only its bounding box and
 * its doubled polygon area are kept, which is all the WSOL box metrics need.
 *
 * Why this exists: wsolevaluation calls cv2.findContours once per CAM threshold; most of that time is the
 * full-image raster scan, the storage of every contour point and the conversion of each contour into a
 * numpy array. Here the work image is carried from one level to the next, each level is scanned on its
 * bounding box only, contour points are folded into (box, area) as they are traced, and the GIL is released
 * so that threads can trace images in parallel.
 *
 * Semantics (the same as OpenCV's, tested against cv2.findContours + cv2.contourArea + cv2.boundingRect):
 * - foreground pixels are 8-connected, background 4-connected; outside the image counts as background;
 * - one contour per outer border (each 8-connected component) and one per hole border (each 4-connected
 *   background component not connected to the outside);
 * - the traced path of a border is Suzuki & Abe's: clockwise search for the first neighbour, then
 *   counterclockwise searches, stopping when the start pixel is re-entered from its first neighbour;
 *   its doubled shoelace area over the pixel centres equals 2 * cv2.contourArea of OpenCV's contour
 *   (CHAIN_APPROX_SIMPLE drops only points in the middle of straight runs, which changes no area).
 *
 * trace_levels(q, height, width, levels) -> bytes
 *   q:      C-contiguous uint8 buffer of height * width pixels (row-major)
 *   levels: C-contiguous int64 buffer of M strictly increasing levels in 1..255 (mask m is {q >= levels[m]})
 *   result: int64 records of 6 values per contour, in the order the raster scan meets them within each
 *           level: (m, x_min, y_min, x_max, y_max, doubled_area), coordinates in q's pixel frame.
 *
 * level_ious(q, height, width, levels, gt) -> bytes
 *   gt:     C-contiguous float64 buffer of K >= 1 boxes x0 y0 x1 y1
 *   result: float64 (M, 3): per level, the best IoU with any GT box of the box of the first largest-area
 *           contour (V1), the best IoU over all contour boxes (V2), and 1.0 where another contour has the same
 *           largest area but a different IoU (the caller must then ask OpenCV which one comes first), else 0.
 *           Boxes are clipped as wsolevaluation does (x1 = min(x_max + 1, width - 1)); an empty level scores
 *           the box [0, 0, 0, 0]. The IoU is boxes.box_iou_plus1's, operation for operation.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Neighbour directions 0..7: E, NE, N, NW, W, SW, S, SE (counterclockwise on screen, rows grow downwards). */
static const int DROW[8] = {0, -1, -1, -1, 0, 1, 1, 1};
static const int DCOL[8] = {1, 1, 0, -1, -1, -1, 0, 1};

enum { BACKGROUND = 0, UNSEEN = 1, SEEN = 2, SEEN_EAST_EXAMINED = -1 };

typedef struct {
    int64_t *data;
    size_t len, cap; /* in int64 values */
} Records;

static int records_push(Records *r, int64_t m, int64_t x0, int64_t y0, int64_t x1, int64_t y1, int64_t area2)
{
    if (r->len + 6 > r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 6 * 256;
        int64_t *data = (int64_t *)realloc(r->data, cap * sizeof(int64_t));
        if (data == NULL) return -1;
        r->data = data;
        r->cap = cap;
    }
    int64_t *d = r->data + r->len;
    d[0] = m; d[1] = x0; d[2] = y0; d[3] = x1; d[4] = y1; d[5] = area2;
    r->len += 6;
    return 0;
}

/*
 * Follow one border of the work image w (int8, a background ring around the image; delta holds the flat
 * offsets of the 8 directions, twice) that starts at flat index p0 = (row0, col0): an outer border (start
 * neighbour W, a background pixel) or a hole border (start neighbour E). Marks the border pixels as Suzuki &
 * Abe do, appends the pixels it marks first to `marked`, and returns the box (work coordinates) and the
 * doubled absolute area of the traced path.
 */
static void follow_border(int8_t *w, const ptrdiff_t delta_in[16], ptrdiff_t p0, int row0, int col0, int is_hole,
                          int box[4], int64_t *area2, ptrdiff_t *marked, size_t *n_marked)
{
    /* Local copies: w is a char type, which may alias anything, so values behind pointers would be reloaded
       after every mark written to w. */
    ptrdiff_t delta[16];
    memcpy(delta, delta_in, sizeof(delta));
    size_t nm = *n_marked;
    int s = is_hole ? 0 : 4;
    int s_end = s;
    ptrdiff_t p1;
    do {
        s = (s - 1) & 7;
        p1 = p0 + delta[s];
    } while (w[p1] == BACKGROUND && s != s_end);

    int x_min = col0, x_max = col0, y_min = row0, y_max = row0;
    int64_t sum = 0;
    if (s == s_end) { /* a single pixel: its only neighbours are background */
        if (w[p0] == UNSEEN) marked[nm++] = p0;
        w[p0] = SEEN_EAST_EXAMINED;
    } else {
        const ptrdiff_t p_first = p1; /* the last pixel of the closed path, met first by the clockwise search */
        ptrdiff_t p3 = p0;
        int row = row0, col = col0;
        for (;;) {
            s_end = s; /* direction from p3 back to the previous pixel (foreground: the search ends by s_end + 8) */
            ptrdiff_t p4;
            do {
                ++s;
                p4 = p3 + delta[s];
            } while (w[p4] == BACKGROUND);
            s &= 7;
            const int8_t f = w[p3];
            if (f == UNSEEN) marked[nm++] = p3; /* to be reset before the next level */
            if ((unsigned)(s - 1) < (unsigned)s_end)
                w[p3] = SEEN_EAST_EXAMINED; /* the east neighbour was a background pixel examined in this search */
            else if (f == UNSEEN)
                w[p3] = SEEN;
            if (p4 == p0 && p3 == p_first) {
                /* close the polygon: the edge from the last pixel back to the start */
                sum += (int64_t)col * row0 - (int64_t)col0 * row;
                break;
            }
            /* shoelace term col * (row + dr) - (col + dc) * row of the step (dr, dc) */
            sum += (int64_t)col * DROW[s] - (int64_t)DCOL[s] * row;
            row += DROW[s];
            col += DCOL[s];
            x_min = col < x_min ? col : x_min;
            x_max = col > x_max ? col : x_max;
            y_min = row < y_min ? row : y_min;
            y_max = row > y_max ? row : y_max;
            p3 = p4;
            s = (s + 4) & 7;
        }
    }
    box[0] = x_min;
    box[1] = y_min;
    box[2] = x_max;
    box[3] = y_max;
    *area2 = sum < 0 ? -sum : sum;
    *n_marked = nm;
}

/* 16 work pixels as a vector (GCC/Clang vector extensions: SSE2 on x86-64, NEON on ARM, scalar elsewhere). */
typedef int8_t v16i8 __attribute__((vector_size(16)));

static inline v16i8 load16(const int8_t *p)
{
    v16i8 x;
    memcpy(&x, p, 16);
    return x;
}

/* Bytes k0..k0+7 of a comparison result (0 or -1 per byte) with byte k0 + k in bits 8k..8k+7. */
static inline uint64_t flag_word(const v16i8 *flags, int k0)
{
    uint64_t x;
    memcpy(&x, (const char *)flags + k0, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap64(x);
#endif
    return x;
}

/*
 * All contours of all level masks (levels strictly increasing); returns 0, or -1 when out of memory.
 * Runs without the GIL.
 *
 * The work image w is (height + 2) x (width + 2) with a background ring. The masks are nested, so w is
 * updated from one level to the next instead of being rebuilt: the border marks of the previous level are
 * reset to 1 and the pixels whose value lies between the two levels become background (pixels visited in
 * order of value, by counting sort). The raster scan covers only the mask's bounding box, 16 pixels at a time:
 * a border can only start at a foreground pixel with a background pixel west or east of it, and those
 * candidates are found with vector operations. Tracing changes marks but never which pixels are background,
 * so the candidates of a word stay valid while its borders are traced (in raster order, as the scan needs).
 */
static int trace_all(const uint8_t *q, int height, int width, const int64_t *levels, Py_ssize_t n_levels,
                     Records *out)
{
    const ptrdiff_t stride = (ptrdiff_t)width + 2 + 16; /* 16 more background columns: whole vectors per row */
    const size_t n_pixels = (size_t)height * (size_t)width;
    uint8_t *row_max = (uint8_t *)calloc((size_t)height, 1);
    uint8_t *col_max = (uint8_t *)calloc((size_t)width, 1);
    int8_t *w = (int8_t *)calloc((size_t)(height + 2) * (size_t)stride, 1);
    ptrdiff_t *by_value = (ptrdiff_t *)malloc(n_pixels * sizeof(ptrdiff_t)); /* work indices sorted by q */
    ptrdiff_t *marked = (ptrdiff_t *)malloc(n_pixels * sizeof(ptrdiff_t));
    size_t first_of_value[257] = {0};
    size_t n_marked = 0;
    int status = 0;
    if (!row_max || !col_max || !w || !by_value || !marked) { status = -1; goto done; }

    size_t count[256] = {0};
    for (int i = 0; i < height; ++i) {
        const uint8_t *r = q + (size_t)i * width;
        uint8_t rm = 0;
        for (int j = 0; j < width; ++j) {
            const uint8_t v = r[j];
            if (v > rm) rm = v;
            if (v > col_max[j]) col_max[j] = v;
            ++count[v];
        }
        row_max[i] = rm;
    }
    for (int v = 0; v < 256; ++v) first_of_value[v + 1] = first_of_value[v] + count[v];
    {
        size_t next[256];
        memcpy(next, first_of_value, sizeof(next));
        for (int i = 0; i < height; ++i)
            for (int j = 0; j < width; ++j)
                by_value[next[q[(size_t)i * width + j]]++] = (ptrdiff_t)(i + 1) * stride + j + 1;
    }
    ptrdiff_t delta[16];
    for (int k = 0; k < 16; ++k) delta[k] = (ptrdiff_t)DROW[k & 7] * stride + DCOL[k & 7];

    int removed_below = 0; /* pixels with q < removed_below are background in w */
    for (int i = 0; i < height; ++i)
        for (int j = 0; j < width; ++j) w[(ptrdiff_t)(i + 1) * stride + j + 1] = UNSEEN;

    for (Py_ssize_t m = 0; m < n_levels; ++m) {
        const int v = (int)levels[m];
        for (size_t k = 0; k < n_marked; ++k) w[marked[k]] = UNSEEN;
        n_marked = 0;
        for (size_t k = first_of_value[removed_below]; k < first_of_value[v]; ++k) w[by_value[k]] = BACKGROUND;
        removed_below = v;
        /* the mask's bounding box: first/last row and column holding a pixel >= v */
        int y0 = 0, y1 = height - 1, x0 = 0, x1 = width - 1;
        while (y0 < height && row_max[y0] < v) ++y0;
        if (y0 == height) continue; /* empty mask: no contour */
        while (row_max[y1] < v) --y1;
        while (col_max[x0] < v) ++x0;
        while (col_max[x1] < v) --x1;
        /* Suzuki & Abe's raster scan (work coordinates are image coordinates + 1): an outer border starts at
           a 1 whose west pixel is 0, a hole border at a non-negative foreground pixel whose east pixel is 0. */
        for (int i = y0 + 1; i <= y1 + 1; ++i) {
            int8_t *r = w + (ptrdiff_t)i * stride;
            for (int j16 = x0 + 1; j16 <= x1 + 1; j16 += 16) {
                /* past x1 + 1 every pixel is background at this level, so whole vectors never invent a start */
                const v16i8 zero = {0};
                v16i8 c = ((load16(r + j16 - 1) == zero) | (load16(r + j16 + 1) == zero)) & (load16(r + j16) != zero);
                uint64_t cand0 = flag_word(&c, 0), cand1 = flag_word(&c, 8);
                if ((cand0 | cand1) == 0) continue;
                cand0 &= 0x8080808080808080ULL;
                cand1 &= 0x8080808080808080ULL;
                for (;;) {
                    int j;
                    if (cand0) {
                        j = j16 + (__builtin_ctzll(cand0) >> 3); /* the first candidate in raster order */
                        cand0 &= cand0 - 1;
                    } else if (cand1) {
                        j = j16 + 8 + (__builtin_ctzll(cand1) >> 3);
                        cand1 &= cand1 - 1;
                    } else {
                        break;
                    }
                    const int8_t f = r[j];
                    int is_hole;
                    if (f == UNSEEN && r[j - 1] == BACKGROUND) is_hole = 0;
                    else if (f >= UNSEEN && r[j + 1] == BACKGROUND) is_hole = 1;
                    else continue;
                    int box[4];
                    int64_t area2;
                    follow_border(w, delta, (ptrdiff_t)i * stride + j, i, j, is_hole, box, &area2, marked, &n_marked);
                    if (records_push(out, m, box[0] - 1, box[1] - 1, box[2] - 1, box[3] - 1, area2) != 0) {
                        status = -1;
                        goto done;
                    }
                }
            }
        }
    }
done:
    free(row_max);
    free(col_max);
    free(w);
    free(by_value);
    free(marked);
    return status;
}

/* Validate q and levels (sets a ValueError and returns -1 when they are wrong). */
static int check_arguments(const Py_buffer *qbuf, int height, int width, const Py_buffer *lbuf)
{
    if (height <= 0 || width <= 0 || qbuf->len != (Py_ssize_t)height * width) {
        PyErr_Format(PyExc_ValueError, "q must hold height * width = %d * %d uint8 pixels; got %zd bytes",
                     height, width, qbuf->len);
        return -1;
    }
    if (lbuf->len % (Py_ssize_t)sizeof(int64_t) != 0) {
        PyErr_SetString(PyExc_ValueError, "levels must be an int64 buffer");
        return -1;
    }
    const int64_t *levels = (const int64_t *)lbuf->buf;
    const Py_ssize_t n_levels = lbuf->len / (Py_ssize_t)sizeof(int64_t);
    for (Py_ssize_t m = 0; m < n_levels; ++m) {
        if (levels[m] < 1 || levels[m] > 255 || (m > 0 && levels[m] <= levels[m - 1])) {
            PyErr_Format(PyExc_ValueError, "levels must be strictly increasing within 1..255; got %lld at %zd",
                         (long long)levels[m], m);
            return -1;
        }
    }
    return 0;
}

static PyObject *trace_levels(PyObject *self, PyObject *args)
{
    Py_buffer qbuf, lbuf;
    int height, width;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*iiy*", &qbuf, &height, &width, &lbuf)) return NULL;
    PyObject *result = NULL;
    Records out = {NULL, 0, 0};
    const int64_t *levels = (const int64_t *)lbuf.buf;
    const Py_ssize_t n_levels = lbuf.len / (Py_ssize_t)sizeof(int64_t);
    if (check_arguments(&qbuf, height, width, &lbuf) != 0) goto fail;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = trace_all((const uint8_t *)qbuf.buf, height, width, levels, n_levels, &out);
    Py_END_ALLOW_THREADS
    if (status != 0) {
        PyErr_NoMemory();
        goto fail;
    }
    result = PyBytes_FromStringAndSize((const char *)out.data, (Py_ssize_t)(out.len * sizeof(int64_t)));
fail:
    free(out.data);
    PyBuffer_Release(&qbuf);
    PyBuffer_Release(&lbuf);
    return result;
}

/* boxes.box_iou_plus1 for one box against K GT boxes, best value; the same float64 operations in the same order. */
static double best_iou_plus1(double x0, double y0, double x1, double y1, const double *gt, Py_ssize_t k)
{
    double best = -1.0;
    const double area_a = (x1 - x0 + 1) * (y1 - y0 + 1);
    for (Py_ssize_t g = 0; g < k; ++g) {
        const double *b = gt + 4 * g;
        const double iw = fmax(0.0, fmin(x1, b[2]) - fmax(x0, b[0]) + 1);
        const double ih = fmax(0.0, fmin(y1, b[3]) - fmax(y0, b[1]) + 1);
        const double inter = iw * ih;
        const double area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1);
        const double uni = area_a + area_b - inter;
        const double iou = uni <= 0 ? 0.0 : inter / uni;
        if (iou > best) best = iou;
    }
    return best;
}

static PyObject *level_ious(PyObject *self, PyObject *args)
{
    Py_buffer qbuf, lbuf, gbuf;
    int height, width;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*iiy*y*", &qbuf, &height, &width, &lbuf, &gbuf)) return NULL;
    PyObject *result = NULL;
    Records rec = {NULL, 0, 0};
    double *out = NULL;
    const int64_t *levels = (const int64_t *)lbuf.buf;
    const Py_ssize_t n_levels = lbuf.len / (Py_ssize_t)sizeof(int64_t);
    const double *gt = (const double *)gbuf.buf;
    const Py_ssize_t n_gt = gbuf.len / (Py_ssize_t)(4 * sizeof(double));
    if (check_arguments(&qbuf, height, width, &lbuf) != 0) goto fail;
    if (n_gt < 1 || gbuf.len != n_gt * (Py_ssize_t)(4 * sizeof(double))) {
        PyErr_SetString(PyExc_ValueError, "gt must be a float64 buffer of K >= 1 boxes x0 y0 x1 y1");
        goto fail;
    }
    out = (double *)malloc((size_t)(n_levels > 0 ? n_levels : 1) * 3 * sizeof(double));
    if (out == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = trace_all((const uint8_t *)qbuf.buf, height, width, levels, n_levels, &rec);
    if (status == 0) {
        const double empty = best_iou_plus1(0, 0, 0, 0, gt, n_gt);
        for (Py_ssize_t m = 0; m < n_levels; ++m) {
            out[3 * m] = out[3 * m + 1] = empty;
            out[3 * m + 2] = 0.0;
        }
        int64_t best_area = -1;
        Py_ssize_t current = -1;
        for (size_t r = 0; r < rec.len; r += 6) {
            const int64_t *d = rec.data + r;
            const Py_ssize_t m = (Py_ssize_t)d[0];
            const int64_t x1 = d[3] + 1 < width - 1 ? d[3] + 1 : width - 1;
            const int64_t y1 = d[4] + 1 < height - 1 ? d[4] + 1 : height - 1;
            const double iou = best_iou_plus1((double)d[1], (double)d[2], (double)x1, (double)y1, gt, n_gt);
            double *o = out + 3 * m;
            if (m != current) { /* records come grouped by level */
                current = m;
                best_area = d[5];
                o[0] = o[1] = iou;
                continue;
            }
            if (iou > o[1]) o[1] = iou;
            if (d[5] > best_area) {
                best_area = d[5];
                o[0] = iou;
                o[2] = 0.0;
            } else if (d[5] == best_area && iou != o[0]) {
                o[2] = 1.0;
            }
        }
    }
    Py_END_ALLOW_THREADS
    if (status != 0) {
        PyErr_NoMemory();
        goto fail;
    }
    result = PyBytes_FromStringAndSize((const char *)out, (Py_ssize_t)(n_levels * 3 * sizeof(double)));
fail:
    free(out);
    free(rec.data);
    PyBuffer_Release(&qbuf);
    PyBuffer_Release(&lbuf);
    PyBuffer_Release(&gbuf);
    return result;
}

static PyMethodDef methods[] = {
    {"trace_levels", trace_levels, METH_VARARGS,
     "trace_levels(q, height, width, levels) -> bytes of int64 records (m, x_min, y_min, x_max, y_max, "
     "doubled_area), one per contour of each level mask {q >= levels[m]} (cv2.findContours RETR_TREE semantics)."},
    {"level_ious", level_ious, METH_VARARGS,
     "level_ious(q, height, width, levels, gt) -> bytes of float64 (M, 3): per level mask, the V1 IoU, the V2 IoU "
     "and a flag for a largest-area tie between boxes that score differently."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_contours", "Border following of all level masks of an 8-bit map (boxes and areas).",
    -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__contours(void) { return PyModule_Create(&module); }
