/* A refcounted snapshot holder: readers take the current object without
 * waiting for a writer; a writer publishes a new object and the old one is
 * destroyed when its last reader lets go.  The serve keyring and config
 * snapshots and the gate's route snapshots are all of this shape.
 *
 * Objects embed a jk_snap_obj as their first member. */
#ifndef JK_SNAPSHOT_H
#define JK_SNAPSHOT_H

#include <pthread.h>
#include <stdatomic.h>

typedef struct jk_snap_obj {
  atomic_uint refs;
  void (*destroy)(struct jk_snap_obj *o);
} jk_snap_obj;

typedef struct jk_snap {
  pthread_mutex_t mu; /* held only to bump a count or swap the pointer */
  jk_snap_obj *cur;
} jk_snap;

/* An object with one reference (the caller's). */
void jk_snap_obj_init(jk_snap_obj *o, void (*destroy)(jk_snap_obj *o));
void jk_snap_init(jk_snap *s);
/* Destroy the holder, releasing its object. */
void jk_snap_destroy(jk_snap *s);
/* The current object with a reference for the caller (NULL if none). */
jk_snap_obj *jk_snap_acquire(jk_snap *s);
/* Release a reference; the last one destroys the object.  NULL: no-op. */
void jk_snap_release(jk_snap_obj *o);
/* Publish o (the holder takes the caller's reference); the previous object
 * is released. */
void jk_snap_publish(jk_snap *s, jk_snap_obj *o);

#endif
