//! Start-up work over thousands of items (reading 10,000 `[[integration]]` tables, building their first states)
//! is most of a large console's time to its first frame: it is split in halves, the second on one more thread.

/// The threads this process may run at once (1 when unknown).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `f(state, index, item)` over `items`, results in order. With at least `from` items and more than one core the
/// second half runs on another thread; each half gets its own `state()`, returned in order (one state when not
/// split). A panic on the other thread is resumed here, as if it had happened here.
pub fn map_halves<T, S, R>(
    items: &[T],
    from: usize,
    state: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, &T) -> R + Sync,
) -> (Vec<R>, Vec<S>)
where
    T: Sync,
    S: Send,
    R: Send,
{
    let run = |items: &[T], first_index: usize| {
        let mut s = state();
        let out: Vec<R> = items
            .iter()
            .enumerate()
            .map(|(i, item)| f(&mut s, first_index + i, item))
            .collect();
        (out, s)
    };
    if items.len() < from.max(2) || cores() < 2 {
        let (out, s) = run(items, 0);
        return (out, vec![s]);
    }
    let (first, second) = items.split_at(items.len() / 2);
    std::thread::scope(|scope| {
        let other = std::thread::Builder::new()
            .name("start-half".into())
            .spawn_scoped(scope, || run(second, first.len()));
        let (mut out, s1) = run(first, 0);
        let (more, s2) = match other {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // The thread could not start: the half is done here.
            Err(_) => run(second, first.len()),
        };
        out.extend(more);
        (out, vec![s1, s2])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_give_the_results_in_order_with_their_indexes_and_a_state_each() {
        let items: Vec<u32> = (0..1000).collect();
        let (out, states) = map_halves(&items, 10, Vec::new, |seen: &mut Vec<usize>, i, x| {
            seen.push(i);
            (i, *x * 2)
        });
        assert_eq!(out.len(), 1000);
        assert!(
            out.iter()
                .enumerate()
                .all(|(n, &(i, x))| i == n && x == 2 * n as u32)
        );
        // Every index seen once, by one state or the other.
        let mut seen: Vec<usize> = states.into_iter().flatten().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        // Below the threshold: one state, in order.
        let (out, states) = map_halves(
            &items[..5],
            10,
            || 0,
            |n: &mut usize, i, _| {
                *n += 1;
                i
            },
        );
        assert_eq!((out, states), ((0..5).collect(), vec![5]));
    }
}
