/*
 * Timers: a binary min-heap linked through the timers themselves. Position k of
 * the heap (1-based, root at 1) has its children at 2k and 2k+1, so the path from
 * the root to position k is spelled by the bits of k below its highest bit; that
 * is how the last slot is found without an array, and why nothing allocates.
 */
#include "runtime/loop_internal.h"

/* Heap order: earlier deadline first, then earlier start. */
static bool timer_less(const dx_timer *a, const dx_timer *b) {
    if (a->deadline != b->deadline)
        return a->deadline < b->deadline;
    return a->seq < b->seq;
}

/* The link that points at heap position @pos (1..count+1): the root pointer or a
 * child field of the node above it. @parent receives that node (NULL for root). */
static dx_timer **slot_for(dx__timer_heap *h, size_t pos, dx_timer **parent) {
    size_t path = 0;
    unsigned depth = 0;
    for (size_t k = pos; k >= 2; k /= 2) {
        path = (path << 1) | (k & 1);
        depth++;
    }
    dx_timer **link = &h->root;
    *parent = NULL;
    while (depth-- > 0) {
        *parent = *link;
        link = (path & 1) ? &(*link)->right : &(*link)->left;
        path >>= 1;
    }
    return link;
}

/* Exchange the places of @p and its child @c in the tree. */
static void swap_with_child(dx__timer_heap *h, dx_timer *p, dx_timer *c) {
    dx_timer *pp = p->parent, *pl = p->left, *pr = p->right;
    dx_timer *cl = c->left, *cr = c->right;

    c->parent = pp;
    if (pl == c) {
        c->left = p;
        c->right = pr;
        if (pr)
            pr->parent = c;
    } else {
        c->right = p;
        c->left = pl;
        if (pl)
            pl->parent = c;
    }
    p->parent = c;
    p->left = cl;
    p->right = cr;
    if (cl)
        cl->parent = p;
    if (cr)
        cr->parent = p;
    if (!pp)
        h->root = c;
    else if (pp->left == p)
        pp->left = c;
    else
        pp->right = c;
}

static void sift_up(dx__timer_heap *h, dx_timer *t) {
    while (t->parent && timer_less(t, t->parent))
        swap_with_child(h, t->parent, t);
}

static void sift_down(dx__timer_heap *h, dx_timer *t) {
    for (;;) {
        dx_timer *least = t;
        if (t->left && timer_less(t->left, least))
            least = t->left;
        if (t->right && timer_less(t->right, least))
            least = t->right;
        if (least == t)
            return;
        swap_with_child(h, t, least);
    }
}

void dx__timer_heap_insert(dx__timer_heap *h, dx_timer *t) {
    dx_timer *parent;
    dx_timer **link = slot_for(h, h->count + 1, &parent);
    t->parent = parent;
    t->left = NULL;
    t->right = NULL;
    *link = t;
    h->count++;
    sift_up(h, t);
}

void dx__timer_heap_remove(dx__timer_heap *h, dx_timer *t) {
    dx_timer *last_parent;
    dx_timer **last_link = slot_for(h, h->count, &last_parent);
    dx_timer *last = *last_link;
    *last_link = NULL; /* detach the last slot first: it may be a child of t */
    h->count--;
    if (last != t) {
        /* last takes t's place, then moves whichever way the order needs */
        last->parent = t->parent;
        last->left = t->left;
        last->right = t->right;
        if (last->left)
            last->left->parent = last;
        if (last->right)
            last->right->parent = last;
        if (!t->parent)
            h->root = last;
        else if (t->parent->left == t)
            t->parent->left = last;
        else
            t->parent->right = last;
        sift_down(h, last);
        sift_up(h, last);
    }
    t->parent = NULL;
    t->left = NULL;
    t->right = NULL;
}

void dx__timer_heap_run(dx__timer_heap *h, uint64_t now, uint64_t seq_mark) {
    dx_timer *t;
    /* A timer started in this iteration has seq >= seq_mark and a deadline of at
     * least now, so every older due timer sorts before it: stopping at the first
     * young one skips no due timer. */
    while ((t = h->root) != NULL && t->deadline <= now && t->seq < seq_mark) {
        dx__timer_heap_remove(h, t);
        t->seq = 0;
        if (t->cb)
            t->cb(t, t->user); /* may start, stop or free any timer, t included */
    }
}

void dx_timer_init(dx_timer *t, dx_timer_cb cb, void *user) {
    memset(t, 0, sizeof(*t));
    t->cb = cb;
    t->user = user;
}

void dx_timer_start(dx_loop *l, dx_timer *t, uint64_t after_ms) {
    if (t->seq)
        dx__timer_heap_remove(&l->timers, t);
    uint64_t deadline = l->now + after_ms;
    t->deadline = deadline < l->now ? UINT64_MAX : deadline; /* saturate */
    t->seq = ++l->timers.next_seq;                           /* never 0: 0 marks a stopped timer */
    dx__timer_heap_insert(&l->timers, t);
}

void dx_timer_stop(dx_loop *l, dx_timer *t) {
    if (!t->seq)
        return;
    dx__timer_heap_remove(&l->timers, t);
    t->seq = 0;
}

bool dx_timer_is_active(const dx_timer *t) {
    return t->seq != 0;
}
