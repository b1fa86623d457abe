//! [`PathLimit`]: what a long poller has learned about the time its path
//! (a proxy, a load balancer) lets a held request live, taught by the
//! requests it cuts, verified, and revisited.
//!
//! A *cut* is a held request that ended without an answer from the server
//! after holding at least [`MIN_CUT`]: a failure the user's classification
//! takes for one (a 502, 503 or 504 without `Retry-After`, a reset), or the
//! per-request timeout (silence). Cuts are hypotheses:
//!
//! - **Taught.** Two cuts in a row at about the same time `T` (within a
//!   tenth, at least 0.5 s) lower the wait to `3/4 × T`; two per-request
//!   timeouts in a row halve it (not below [`MIN_SILENT_WAIT`]); a run of
//!   [`RUN_TEACHES`] cuts in a row that make no such pair teaches `3/4` of
//!   the shortest answer cut among them. The wait
//!   only goes down while a lesson stands.
//! - **Verified.** The request at the lowered wait tells: answered normally,
//!   the limit holds (the strategy forgives the cuts); failed too, the path
//!   is down, not short, and the failures count as any others.
//! - **Revisited.** [`PROBE_AFTER`] after it was learned, one request asks
//!   for the configured wait: answered normally (after holding at least as
//!   long as the cut), the configured wait is restored; cut, the lesson
//!   stays and the next probe goes out [`PROBE_AFTER`] later, and each one
//!   cut again waits twice as long (at most [`PROBE_MAX`]). A probe cut
//!   while the path is down (the request before it or after it failed
//!   too) counts for nothing.

use std::time::Duration;

use tokio::time::Instant;

/// Failures faster than this are refusals, not cuts.
pub(crate) const MIN_CUT: Duration = Duration::from_secs(1);
/// Halving the wait after silent cuts stops here.
const MIN_SILENT_WAIT: Duration = Duration::from_secs(1);
/// Two cuts within this share of each other (or [`SAME_TIME_MIN`]) are "at
/// about the same time".
const SAME_TIME_SHARE: u32 = 10;
const SAME_TIME_MIN: Duration = Duration::from_millis(500);
/// A learned limit holds at least this long before a probe asks for the
/// configured wait again: a real proxy is not hit with a cut every few
/// minutes, and a wrong lesson does not outlive a quarter of an hour.
pub(crate) const PROBE_AFTER: Duration = Duration::from_secs(600);
/// A silent lesson's check silenced too halves the wait again at once
/// (without a pair) while the check asked more than this, the default wait:
/// each silence there costs more than half a minute, and pairs would spend
/// the failure bound before the limit is found. At or below it a pair is
/// cheap, and keeps a dead silent path from teaching its way down.
const HALVE_AT_ONCE_ABOVE: Duration = super::WAIT;

/// Probes that are cut back off up to this.
const PROBE_MAX: Duration = Duration::from_secs(4 * 3600);

/// How a held request was cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cut {
    /// An answer that is no answer (a 504, a reset) after this long.
    Answer(Duration),
    /// The per-request timeout: the path said nothing at all.
    Silence,
}

/// What a cut did to the lesson.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lesson {
    /// It taught (or lowered) the limit: ask again at once with this wait.
    Taught(Duration),
    /// It cut a probe: the learned wait stays, and the cut is no error.
    ProbeCut,
    /// It taught nothing: an ordinary failure.
    Nothing,
}

/// A limit learned from cuts.
#[derive(Clone, Copy, Debug)]
struct Learned {
    /// The wait to ask for at most.
    wait: Duration,
    /// How long the held requests lived before they were cut: a probe that
    /// holds this long shows that the path no longer cuts there.
    cut_at: Duration,
    /// Whether the cuts were silence (rather than an answer that is none).
    silent: bool,
    /// When it was learned (or last confirmed by a cut probe).
    since: Instant,
    /// How long after `since` the next probe goes out.
    probe_after: Duration,
    /// A probe's cut stands once a request at the learned wait after it is
    /// answered; if that one fails too, the path was down rather than
    /// short, and the probe's backoff (the `since` and `probe_after` before
    /// it, kept here) is undone: the next request probes again.
    suspect: Option<(Instant, Duration, u32)>,
    /// Probes cut so far: the first cut probe is tried again after
    /// [`PROBE_AFTER`]; only a probe cut again backs off.
    probes_cut: u32,
    /// Whether a request at the learned wait has been answered: until then
    /// a silent lesson is still being checked.
    verified: bool,
}

impl Learned {
    /// Undoes a probe's backoff that the path being down explains.
    fn undo_suspect(&mut self) {
        if let Some((since, after, cut)) = self.suspect.take() {
            self.since = since;
            self.probe_after = after;
            self.probes_cut = cut;
        }
    }
}

/// What one poller has learned about its path.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PathLimit {
    /// The last cut, with the wait its request asked for, while no other
    /// outcome came after it.
    candidate: Option<(Cut, Duration)>,
    learned: Option<Learned>,
    /// Whether the last request before this one failed: a probe cut right
    /// after a failure is the path being down, not evidence of its limit.
    down: bool,
    /// Cuts in a row with no other outcome between them, and the shortest
    /// of those that were answers: cuts that never pair (two load balancer
    /// nodes that cut at 10 s and 20 s in turn, a 504 then silence) still
    /// teach after [`RUN_TEACHES`] of them.
    run: (u32, Option<Duration>),
}

/// Cuts in a row that teach from the shortest of them even when no two of
/// them came at about the same time.
const RUN_TEACHES: u32 = 3;

impl PathLimit {
    /// The wait a request starting at `now` asks for, given the configured
    /// one, and whether the request is a probe of the configured wait.
    pub(crate) fn wait(&self, configured: Duration, now: Instant) -> (Duration, bool) {
        match self.learned {
            Some(l) if l.wait < configured => {
                if now.saturating_duration_since(l.since) >= l.probe_after {
                    (configured, true)
                } else {
                    (l.wait, false)
                }
            }
            _ => (configured, false),
        }
    }

    /// Whether a lesson stands.
    #[cfg(test)]
    fn learned(&self) -> Option<Duration> {
        self.learned.map(|l| l.wait)
    }

    /// A request that asked for `asked` (a probe when `probe`) was cut at
    /// `now`.
    pub(crate) fn cut(&mut self, cut: Cut, asked: Duration, probe: bool, now: Instant) -> Lesson {
        if let Cut::Answer(took) = cut {
            if took < MIN_CUT {
                // A refusal: no cut, and a failure like any other.
                self.failed();
                return Lesson::Nothing;
            }
        }
        let after_failure = std::mem::replace(&mut self.down, true);
        if let Some(l) = self.learned.as_mut() {
            // A probe cut the way the lesson's requests were (silence again,
            // or an answer no later than the cut) confirms the limit; cut
            // some other way (a 504 after 29 s where the lesson was 2 s of
            // silence: an outage's gateway), it says nothing about it.
            let same = match cut {
                Cut::Silence => l.silent,
                Cut::Answer(took) => {
                    !l.silent && took <= l.cut_at + (l.cut_at / SAME_TIME_SHARE).max(SAME_TIME_MIN)
                }
            };
            if probe && same && !after_failure {
                l.suspect = Some((l.since, l.probe_after, l.probes_cut));
                l.since = now;
                l.probes_cut = l.probes_cut.saturating_add(1);
                if l.probes_cut > 1 {
                    l.probe_after = l.probe_after.saturating_mul(2).min(PROBE_MAX);
                }
                if l.silent {
                    // Silence says "shorter than the probe", not how much:
                    // a lesson halved again and again by an outage's silence
                    // (1 s behind a 20 s load balancer) would stay that low
                    // forever. Climb back by doubling, up to half the probe;
                    // a step past the real limit is silenced twice and halved
                    // back, which costs one counted failure, forgiven once
                    // the halved wait is answered.
                    // The step is no probe: silenced, it is halved back
                    // as a new lesson, not taken for the path being down
                    // (which would undo this cut and probe again at once).
                    let climbed = l.wait.saturating_mul(2).min(asked / 2).max(l.wait);
                    if climbed > l.wait {
                        l.wait = climbed;
                        l.suspect = None;
                    }
                }
                self.candidate = None;
                self.run = (0, None);
                return Lesson::ProbeCut;
            }
            l.undo_suspect();
            // A silent lesson's check (a request at its wait, before any was
            // answered) silenced too: the path's silent limit is shorter
            // still. Halve again at once, as a new lesson. Waiting for a pair
            // at each halving charged a long wait's silences to the failure
            // bound before the limit was found (a 300 s wait behind a 30 s
            // silent NAT died). At the floor a silence is a failure like any
            // other, and the streak since the first cut applies.
            if l.silent
                && !l.verified
                && !probe
                && cut == Cut::Silence
                && asked == l.wait
                && asked > HALVE_AT_ONCE_ABOVE
            {
                let halved = (asked / 2).max(MIN_SILENT_WAIT);
                if halved < asked {
                    l.wait = halved;
                    l.cut_at = asked;
                    l.since = now;
                    self.candidate = None;
                    self.run = (0, None);
                    return Lesson::Taught(halved);
                }
            }
        }
        let previous = self.candidate.replace((cut, asked));
        let (count, shortest) = &mut self.run;
        *count = count.saturating_add(1);
        if let Cut::Answer(took) = cut {
            *shortest = Some(shortest.map_or(took, |s| s.min(took)));
        }
        let (count, shortest) = self.run;
        let (wait, cut_at, silent) = match (previous, cut) {
            (Some((Cut::Answer(before), _)), Cut::Answer(took))
                if before.abs_diff(took) <= (took / SAME_TIME_SHARE).max(SAME_TIME_MIN) =>
            {
                let cut_at = before.min(took);
                (cut_at * 3 / 4, cut_at, false)
            }
            (Some((Cut::Silence, before)), Cut::Silence) if before == asked => {
                ((asked / 2).max(MIN_SILENT_WAIT), asked, true)
            }
            // No pair, but a run of cuts with no answer between them: the
            // path cuts somewhere at or under the shortest of them (the
            // request at the lowered wait verifies it, as after a pair).
            _ => match shortest {
                Some(cut_at) if count >= RUN_TEACHES => (cut_at * 3 / 4, cut_at, false),
                _ => return Lesson::Nothing,
            },
        };
        if wait >= asked {
            // The path is no shorter than what was asked: nothing to lower.
            return Lesson::Nothing;
        }
        self.candidate = None;
        self.run = (0, None);
        self.learned = Some(Learned {
            wait,
            cut_at,
            silent,
            since: now,
            probe_after: PROBE_AFTER,
            suspect: None,
            probes_cut: 0,
            verified: false,
        });
        Lesson::Taught(wait)
    }

    /// Whether a reply has anything to settle here: a cut waiting for its
    /// pair, or a lesson to verify or probe.
    #[inline]
    pub(crate) fn unsettled(&self) -> bool {
        self.candidate.is_some() || self.learned.is_some()
    }

    /// A request ended some other way than a cut (a reset reply): the next
    /// cut does not make a pair with the last one.
    pub(crate) fn not_cut(&mut self) {
        self.candidate = None;
        self.run = (0, None);
        self.down = false;
    }

    /// A request failed, but not as a cut (a hinted, quick or permanent
    /// failure): not "in a row" with the last cut, and, after a cut probe,
    /// a sign that the path was down rather than short.
    pub(crate) fn failed(&mut self) {
        self.candidate = None;
        self.run = (0, None);
        self.down = true;
        if let Some(l) = self.learned.as_mut() {
            l.undo_suspect();
        }
    }

    /// A request that asked for `asked` (a probe when `probe`) was answered
    /// normally after `took`. Returns `true` when this restored the
    /// configured wait.
    pub(crate) fn answered(&mut self, took: Duration, asked: Duration, probe: bool) -> bool {
        self.candidate = None;
        self.run = (0, None);
        self.down = false;
        let Some(l) = self.learned.as_mut() else {
            return false;
        };
        if !probe {
            // The learned wait works: a probe's cut before it stands.
            l.suspect = None;
            l.verified = true;
        }
        // A probe answered early (a change) says nothing about the limit:
        // the next request probes again.
        if probe && took >= l.cut_at.min(asked) {
            self.learned = None;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn answer(s: u64) -> Cut {
        Cut::Answer(secs(s))
    }

    #[test]
    fn two_similar_cuts_teach_the_limit() {
        let now = Instant::now();
        let mut path = PathLimit::default();
        assert_eq!(path.cut(answer(5), secs(30), false, now), Lesson::Nothing);
        assert_eq!(
            path.cut(
                Cut::Answer(Duration::from_millis(5_100)),
                secs(30),
                false,
                now
            ),
            Lesson::Taught(Duration::from_millis(3_750))
        );
        assert_eq!(
            path.wait(secs(30), now),
            (Duration::from_millis(3_750), false)
        );
        assert_eq!(path.wait(secs(2), now), (secs(2), false));
    }

    #[test]
    fn a_cut_just_under_the_wait_teaches() {
        let now = Instant::now();
        let mut path = PathLimit::default();
        path.cut(answer(29), secs(30), false, now);
        let lesson = path.cut(answer(29), secs(30), false, now);
        assert_eq!(lesson, Lesson::Taught(Duration::from_millis(21_750)));
    }

    #[test]
    fn refusals_and_scattered_failures_teach_nothing() {
        let now = Instant::now();
        let mut path = PathLimit::default();
        for _ in 0..10 {
            let quick = Cut::Answer(Duration::from_millis(300));
            assert_eq!(path.cut(quick, secs(30), false, now), Lesson::Nothing);
        }
        // Two scattered cuts teach nothing (a run of three does, from its
        // shortest: see `a_run_of_cuts_that_never_pair_teaches_from_the_shortest`).
        for s in [2, 9] {
            assert_eq!(path.cut(answer(s), secs(30), false, now), Lesson::Nothing);
        }
        path.failed();
        // A refusal between two cuts: not in a row.
        path.cut(answer(5), secs(30), false, now);
        path.cut(Cut::Answer(Duration::ZERO), secs(30), false, now);
        assert_eq!(path.cut(answer(5), secs(30), false, now), Lesson::Nothing);
        assert_eq!(path.learned(), None);
    }

    #[test]
    fn cuts_no_shorter_than_the_wait_teach_nothing() {
        let now = Instant::now();
        let mut path = PathLimit::default();
        path.cut(answer(40), secs(25), false, now);
        assert_eq!(path.cut(answer(40), secs(25), false, now), Lesson::Nothing);
    }

    #[test]
    fn silence_twice_halves_the_wait_down_to_a_floor() {
        let now = Instant::now();
        let mut path = PathLimit::default();
        assert_eq!(
            path.cut(Cut::Silence, secs(25), false, now),
            Lesson::Nothing
        );
        assert_eq!(
            path.cut(Cut::Silence, secs(25), false, now),
            Lesson::Taught(Duration::from_millis(12_500))
        );
        let mut wait = secs(2);
        path.cut(Cut::Silence, wait, false, now);
        assert_eq!(
            path.cut(Cut::Silence, wait, false, now),
            Lesson::Taught(secs(1))
        );
        wait = secs(1);
        path.cut(Cut::Silence, wait, false, now);
        assert_eq!(path.cut(Cut::Silence, wait, false, now), Lesson::Nothing);
    }

    #[test]
    fn a_silent_lessons_check_silenced_again_halves_at_once() {
        let now = Instant::now();
        let mut path = PathLimit::default();
        path.cut(Cut::Silence, secs(300), false, now);
        assert_eq!(
            path.cut(Cut::Silence, secs(300), false, now),
            Lesson::Taught(secs(150))
        );
        // The check at 150 s silenced: 75 s at once, no pair needed.
        assert_eq!(
            path.cut(Cut::Silence, secs(150), false, now),
            Lesson::Taught(secs(75))
        );
        // Answered at 75 s: checked. A later silence needs a pair again.
        path.answered(secs(75), secs(75), false);
        assert_eq!(
            path.cut(Cut::Silence, secs(75), false, now),
            Lesson::Nothing
        );
        assert_eq!(
            path.cut(Cut::Silence, secs(75), false, now),
            Lesson::Taught(Duration::from_millis(37_500))
        );
        // A check of 25 s or less silenced needs a pair, as before.
        let mut path = PathLimit::default();
        path.cut(Cut::Silence, secs(50), false, now);
        assert_eq!(
            path.cut(Cut::Silence, secs(50), false, now),
            Lesson::Taught(secs(25))
        );
        assert_eq!(
            path.cut(Cut::Silence, secs(25), false, now),
            Lesson::Nothing
        );
        assert_eq!(
            path.cut(Cut::Silence, secs(25), false, now),
            Lesson::Taught(Duration::from_millis(12_500))
        );
    }

    /// Review find: cuts that never pair (two load balancer nodes cutting at
    /// 10 s and 20 s in turn) taught nothing, so a healthy quiet watch
    /// counted every cut and died at the failure bound.
    #[test]
    fn a_run_of_cuts_that_never_pair_teaches_from_the_shortest() {
        let now = Instant::now();
        let mut path = PathLimit::default();
        assert_eq!(path.cut(answer(10), secs(25), false, now), Lesson::Nothing);
        assert_eq!(path.cut(answer(20), secs(25), false, now), Lesson::Nothing);
        assert_eq!(
            path.cut(answer(12), secs(25), false, now),
            Lesson::Taught(Duration::from_millis(7_500))
        );
        // An answer between cuts breaks the run.
        let mut path = PathLimit::default();
        path.cut(answer(10), secs(25), false, now);
        path.cut(answer(20), secs(25), false, now);
        path.answered(secs(25), secs(25), false);
        assert_eq!(path.cut(answer(12), secs(25), false, now), Lesson::Nothing);
        // Silence among them counts toward the run, not toward the shortest.
        let mut path = PathLimit::default();
        path.cut(Cut::Silence, secs(25), false, now);
        path.cut(answer(20), secs(25), false, now);
        assert_eq!(
            path.cut(Cut::Silence, secs(25), false, now),
            Lesson::Taught(secs(15))
        );
    }

    /// Review find: a silent lesson halved by an outage (down to 1 s behind
    /// a 20 s silent load balancer) was kept forever, since every probe at
    /// the configured wait was silenced by the real limit and taken as
    /// confirmation: 12x the requests of the right wait, indefinitely.
    #[test]
    fn silent_probe_cuts_climb_back_up_to_half_the_probe() {
        let t0 = Instant::now();
        let mut path = PathLimit::default();
        path.cut(Cut::Silence, secs(2), false, t0);
        assert_eq!(
            path.cut(Cut::Silence, secs(2), false, t0),
            Lesson::Taught(secs(1))
        );
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..6 {
            // Answered at the learned wait, then a probe silenced.
            now += Duration::from_secs(5 * 3600);
            let learned = path.learned().unwrap();
            path.answered(learned, learned, false);
            let (wait, probe) = path.wait(secs(25), now);
            assert_eq!((wait, probe), (secs(25), true));
            assert_eq!(
                path.cut(Cut::Silence, secs(25), true, now),
                Lesson::ProbeCut
            );
            path.answered(secs(1), secs(1), false);
            waits.push(path.learned().unwrap().as_millis());
        }
        assert_eq!(waits, [2_000, 4_000, 8_000, 12_500, 12_500, 12_500]);
    }

    #[test]
    fn a_probe_goes_out_after_ten_minutes_and_restores_the_wait() {
        let t0 = Instant::now();
        let mut path = PathLimit::default();
        path.cut(answer(8), secs(25), false, t0);
        path.cut(answer(8), secs(25), false, t0);
        assert_eq!(path.wait(secs(25), t0 + secs(599)), (secs(6), false));
        let (wait, probe) = path.wait(secs(25), t0 + PROBE_AFTER);
        assert_eq!((wait, probe), (secs(25), true));
        // Answered early by a change: inconclusive, probe again.
        assert!(!path.answered(secs(2), secs(25), true));
        assert!(path.wait(secs(25), t0 + PROBE_AFTER).1);
        assert!(path.answered(secs(25), secs(25), true));
        assert_eq!(path.wait(secs(25), t0 + PROBE_AFTER), (secs(25), false));
    }

    #[test]
    fn a_cut_probe_keeps_the_lesson_and_backs_off_when_cut_again() {
        let t0 = Instant::now();
        let mut path = PathLimit::default();
        path.cut(answer(8), secs(25), false, t0);
        path.cut(answer(8), secs(25), false, t0);
        // Verified: the lowered wait is answered.
        path.answered(secs(6), secs(6), false);
        let first = t0 + PROBE_AFTER;
        assert_eq!(path.cut(answer(8), secs(25), true, first), Lesson::ProbeCut);
        assert_eq!(path.wait(secs(25), first + secs(1)), (secs(6), false));
        path.answered(secs(6), secs(6), false);
        // The first cut probe is tried again after the same 10 minutes.
        let second = first + PROBE_AFTER;
        assert_eq!(path.wait(secs(25), second), (secs(25), true));
        path.cut(answer(8), secs(25), true, second);
        path.answered(secs(6), secs(6), false);
        // Cut again: 20 minutes, then 40.
        assert!(!path.wait(secs(25), second + PROBE_AFTER * 2 - secs(1)).1);
        let third = second + PROBE_AFTER * 2;
        assert!(path.wait(secs(25), third).1);
        path.cut(answer(8), secs(25), true, third);
        path.answered(secs(6), secs(6), false);
        assert!(!path.wait(secs(25), third + PROBE_AFTER * 4 - secs(1)).1);
        assert!(path.wait(secs(25), third + PROBE_AFTER * 4).1);
    }

    #[test]
    fn a_probe_cut_by_an_outage_does_not_back_off() {
        let t0 = Instant::now();
        let lowered = Duration::from_millis(12_500);
        let mut path = PathLimit::default();
        path.cut(Cut::Silence, secs(25), false, t0);
        path.cut(Cut::Silence, secs(25), false, t0);
        path.answered(lowered, lowered, false);
        let probe = t0 + PROBE_AFTER;
        let lesson = path.cut(Cut::Silence, secs(25), true, probe);
        assert_eq!(lesson, Lesson::ProbeCut);
        // The request at the learned wait fails too: the path is down.
        path.failed();
        assert!(
            path.wait(secs(25), probe).1,
            "the next request probes again"
        );
        // Answered again, a probe cut, then the learned wait answered: the
        // cut stands (the first that does: the next probe in 10 minutes).
        path.answered(lowered, lowered, false);
        path.cut(Cut::Silence, secs(25), true, probe);
        assert!(!path.answered(secs(12), lowered, false));
        assert!(!path.wait(secs(25), probe + PROBE_AFTER - secs(1)).1);
        assert!(path.wait(secs(25), probe + PROBE_AFTER).1);
    }

    #[test]
    fn a_probe_cut_another_way_confirms_nothing() {
        let t0 = Instant::now();
        let mut path = PathLimit::default();
        path.cut(Cut::Silence, secs(2), false, t0);
        path.cut(Cut::Silence, secs(2), false, t0);
        let probe = t0 + PROBE_AFTER;
        // A 504 after 29 s: the path held far longer than the lesson says.
        let lesson = path.cut(answer(29), secs(25), true, probe);
        assert_eq!(lesson, Lesson::Nothing);
        assert!(path.wait(secs(25), probe).1, "still due");
    }

    #[test]
    fn a_probe_cut_right_after_a_failure_confirms_nothing() {
        let t0 = Instant::now();
        let mut path = PathLimit::default();
        path.cut(Cut::Silence, secs(2), false, t0);
        path.cut(Cut::Silence, secs(2), false, t0);
        path.failed();
        let probe = t0 + PROBE_AFTER;
        assert_eq!(
            path.cut(Cut::Silence, secs(25), true, probe),
            Lesson::Nothing
        );
        assert!(path.wait(secs(25), probe).1, "still due");
    }

    #[test]
    fn only_lowers_while_a_lesson_stands() {
        let now = Instant::now();
        let mut path = PathLimit::default();
        path.cut(answer(8), secs(30), false, now);
        assert_eq!(
            path.cut(answer(8), secs(30), false, now),
            Lesson::Taught(secs(6))
        );
        path.cut(answer(4), secs(6), false, now);
        assert_eq!(
            path.cut(answer(4), secs(6), false, now),
            Lesson::Taught(secs(3))
        );
        assert_eq!(path.wait(secs(30), now), (secs(3), false));
    }
}
