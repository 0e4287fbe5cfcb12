/* Refcounted snapshots (snapshot.h). */
#include "common/snapshot.h"

#include <stddef.h>

void jk_snap_obj_init(jk_snap_obj *o, void (*destroy)(jk_snap_obj *o)) {
  atomic_init(&o->refs, 1);
  o->destroy = destroy;
}

void jk_snap_init(jk_snap *s) {
  pthread_mutex_init(&s->mu, NULL);
  s->cur = NULL;
}

void jk_snap_destroy(jk_snap *s) {
  jk_snap_release(s->cur);
  s->cur = NULL;
  pthread_mutex_destroy(&s->mu);
}

jk_snap_obj *jk_snap_acquire(jk_snap *s) {
  pthread_mutex_lock(&s->mu);
  jk_snap_obj *o = s->cur;
  if (o != NULL) atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
  pthread_mutex_unlock(&s->mu);
  return o;
}

void jk_snap_release(jk_snap_obj *o) {
  if (o == NULL) return;
  if (atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) == 1) o->destroy(o);
}

void jk_snap_publish(jk_snap *s, jk_snap_obj *o) {
  pthread_mutex_lock(&s->mu);
  jk_snap_obj *old = s->cur;
  s->cur = o;
  pthread_mutex_unlock(&s->mu);
  jk_snap_release(old);
}
