#ifndef RING_BUFFER_H
#define RING_BUFFER_H

#include <stddef.h>

/* A fixed-size FIFO of bytes; one slot is kept free to tell full from empty. */
typedef struct {
    unsigned char *data;
    size_t capacity;
    size_t head;
    size_t tail;
} ring_buffer;

static inline size_t ring_used(const ring_buffer *rb) {
    return (rb->head + rb->capacity - rb->tail) % rb->capacity;
}

static inline int ring_push(ring_buffer *rb, unsigned char byte) {
    size_t next = (rb->head + 1) % rb->capacity;
    if (next == rb->tail) {
        return -1;
    }
    rb->data[rb->head] = byte;
    rb->head = next;
    return 0;
}

#endif
