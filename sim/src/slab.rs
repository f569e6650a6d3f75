//! Generational slabs: the request engine's jobs and calls, and the replicas' queues
//! of job ids. A removed entry's id never matches again.

/// A generational index into a slab.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlabId {
    idx: u32,
    generation: u32,
}

impl SlabId {
    pub(crate) fn raw(self) -> u64 {
        (self.idx as u64) << 32 | self.generation as u64
    }
}

pub(crate) type JobId = SlabId;
pub(crate) type CallId = SlabId;

struct Slot<T> {
    generation: u32,
    val: Option<T>,
}

/// A vector of reusable slots; a removed entry's id never matches again.
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    pub(crate) live: usize,
}

impl<T> Slab<T> {
    pub(crate) fn new() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
        }
    }

    pub(crate) fn insert(&mut self, v: T) -> SlabId {
        self.live += 1;
        if let Some(idx) = self.free.pop() {
            let s = &mut self.slots[idx as usize];
            s.val = Some(v);
            SlabId {
                idx,
                generation: s.generation,
            }
        } else {
            self.slots.push(Slot {
                generation: 0,
                val: Some(v),
            });
            SlabId {
                idx: (self.slots.len() - 1) as u32,
                generation: 0,
            }
        }
    }

    #[inline]
    pub(crate) fn get(&self, id: SlabId) -> Option<&T> {
        let s = self.slots.get(id.idx as usize)?;
        if s.generation == id.generation {
            s.val.as_ref()
        } else {
            None
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, id: SlabId) -> Option<&mut T> {
        let s = self.slots.get_mut(id.idx as usize)?;
        if s.generation == id.generation {
            s.val.as_mut()
        } else {
            None
        }
    }

    pub(crate) fn remove(&mut self, id: SlabId) -> Option<T> {
        let s = self.slots.get_mut(id.idx as usize)?;
        if s.generation != id.generation {
            return None;
        }
        let v = s.val.take()?;
        s.generation = s.generation.wrapping_add(1);
        self.free.push(id.idx);
        self.live -= 1;
        Some(v)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (SlabId, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.val.as_ref().map(|v| {
                (
                    SlabId {
                        idx: i as u32,
                        generation: s.generation,
                    },
                    v,
                )
            })
        })
    }
}
