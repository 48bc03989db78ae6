//! Word lists for demonstration data.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

const FIRST: &[&str] = &[
    "maria", "james", "aiko", "lukas", "fatima", "noah", "sofia", "mateo", "amara", "oliver",
    "chloe", "ravi", "elena", "kwame", "ingrid", "tomas", "yuki", "leila", "diego", "hannah",
    "omar", "freya", "kenji", "zara", "pablo", "anya", "samuel", "mei", "jonas", "isabel", "tariq",
    "clara", "felix", "nadia", "arjun", "lucia", "emil", "sara", "viktor", "alma",
];

const LAST: &[&str] = &[
    "kovacs", "smith", "tanaka", "schmidt", "haddad", "johnson", "rossi", "garcia", "okafor",
    "brown", "dubois", "patel", "ivanova", "mensah", "larsen", "novak", "sato", "karimi", "lopez",
    "weber", "farouk", "nilsen", "mori", "ahmed", "ruiz", "petrova", "cohen", "chen", "berg",
    "santos", "aziz", "moreau", "wagner", "hassan", "singh", "romero", "holm", "lind", "popescu",
    "silva",
];

/// Countries with rough weights by audience share.
const COUNTRIES: &[(&str, u32)] = &[
    ("GB", 18),
    ("US", 20),
    ("DE", 10),
    ("FR", 8),
    ("ES", 6),
    ("IT", 6),
    ("NL", 4),
    ("SE", 3),
    ("PL", 4),
    ("BR", 5),
    ("IN", 6),
    ("JP", 4),
    ("NG", 2),
    ("CA", 3),
    ("AU", 3),
];

/// Browsers and apps people use.
pub(super) const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "LiveComments/4.2 (iOS 18.1)",
    "LiveComments/4.2 (Android 15)",
];

/// Reaction kinds.
pub(super) const REACTIONS: &[&str] = &["like", "love", "laugh", "wow", "sad", "angry"];

const EVENT_KINDS: &[&str] = &[
    "Cup Final",
    "Election Night",
    "Product Keynote",
    "Grand Prix",
    "Song Contest",
    "Derby Day",
    "Space Launch",
    "Awards Night",
    "Marathon",
    "Tennis Final",
    "Chess Match",
    "Budget Speech",
    "Esports Final",
    "Cooking Live",
    "Town Hall",
];

/// Ordinary comments. They avoid every phrase the threat patterns look for.
const CHATTER: &[&str] = &[
    "What a start to this!",
    "Can't believe that just happened",
    "Anyone else watching from the train?",
    "That was brilliant, honestly",
    "The commentary tonight is excellent",
    "Not my favourite moment so far",
    "Here we go again...",
    "This is the best one in years",
    "Great atmosphere in the crowd",
    "I think the second half will be better",
    "Who saw that coming?",
    "Incredible effort from everyone involved",
    "The stream is a bit laggy for me",
    "Hello from Lisbon!",
    "That decision was questionable",
    "Absolutely love this",
    "My predictions were all wrong lol",
    "Well played, well played",
    "So tense right now",
    "Can we get a replay of that?",
    "The sound is out of sync on mobile",
    "First time commenting, long time watcher",
    "That was close!",
    "Respect to the organisers",
    "This deserves more viewers",
];

/// Comments that carry what the screening rules look for (phishing, spam, malware lures,
/// social engineering), some with links.
const SUSPICIOUS: &[&str] = &[
    "Your account will be suspended, click here to verify account: http://secure-verify-login.example-bank.top/confirm",
    "URGENT ACTION needed, verify account at http://192.0.2.44/login now",
    "Buy now!!! Limited time offer, guaranteed results https://bit.ly/3xYz9Qa",
    "Act fast, guaranteed winnings every night, see https://deals.example-promo.biz",
    "Download the HD stream player .exe here http://free-streams.example.ru/player.exe",
    "Install now the free software to watch without ads http://xn--strem-9ua.example.com",
    "Hey, I'm from the support team, send me your password and I'll fix your stream",
    "Tell me your login code and I'll add you to the VIP chat",
];

/// A generated person.
pub(super) struct Person {
    pub username: String,
    pub display_name: String,
    pub country: &'static str,
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// The `i`-th person; the index keeps usernames unique.
pub(super) fn person(rng: &mut ChaCha8Rng, i: u32) -> Person {
    let first = FIRST.choose(rng).copied().unwrap_or("alex");
    let last = LAST.choose(rng).copied().unwrap_or("doe");
    let total: u32 = COUNTRIES.iter().map(|c| c.1).sum();
    let mut pick = rng.gen_range(0..total);
    let mut country = COUNTRIES[0].0;
    for (code, w) in COUNTRIES {
        if pick < *w {
            country = code;
            break;
        }
        pick -= w;
    }
    Person {
        username: format!("{first}.{last}{i}"),
        display_name: format!("{} {}", capitalise(first), capitalise(last)),
        country,
    }
}

/// An event title such as "Cup Final #12".
pub(super) fn event_title(rng: &mut ChaCha8Rng, i: usize) -> String {
    let kind = EVENT_KINDS.choose(rng).copied().unwrap_or("Live");
    format!("{kind} #{}", i + 1)
}

/// An everyday comment, as a scenario-free history holds.
pub(super) fn chatter(rng: &mut ChaCha8Rng) -> String {
    CHATTER.choose(rng).copied().unwrap_or_default().to_owned()
}

/// A comment: ordinary chatter, and about one in fifty suspicious (screening benchmarks).
pub(super) fn comment_body(rng: &mut ChaCha8Rng) -> String {
    if rng.gen_bool(0.02) {
        SUSPICIOUS
            .choose(rng)
            .copied()
            .unwrap_or_default()
            .to_owned()
    } else {
        CHATTER.choose(rng).copied().unwrap_or_default().to_owned()
    }
}

const MAIL_DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "example.net",
    "mail.example",
    "post.example",
];

/// An email address for `username`: unique because the username is.
pub(super) fn email(rng: &mut ChaCha8Rng, username: &str) -> String {
    let domain = MAIL_DOMAINS.choose(rng).copied().unwrap_or("example.com");
    format!("{username}@{domain}")
}

/// A phone number in the E.164 style, from the fictional 555 ranges.
pub(super) fn phone(rng: &mut ChaCha8Rng) -> String {
    format!(
        "+1-555-{:03}-{:04}",
        rng.gen_range(100..1000),
        rng.gen_range(0..10_000)
    )
}

/// An IPv4 address from a documentation or private range, or now and then an IPv6 one.
pub(super) fn ip(rng: &mut ChaCha8Rng) -> String {
    if rng.gen_bool(0.15) {
        format!(
            "2001:db8:{:x}::{:x}",
            rng.gen_range(0..0xffffu32),
            rng.gen_range(1..0xffffu32)
        )
    } else {
        format!(
            "10.{}.{}.{}",
            rng.gen::<u8>(),
            rng.gen::<u8>(),
            rng.gen_range(1..255u8)
        )
    }
}

/// A direct message between people who share an encrypted thread.
pub(super) fn private_note(rng: &mut ChaCha8Rng) -> String {
    const NOTES: &[&str] = &[
        "Meet you in the VIP chat after the match?",
        "Sending you the clip privately, don't share it yet.",
        "Can you check whether the mods saw my report?",
        "Thanks for the tip earlier, it worked.",
    ];
    NOTES.choose(rng).copied().unwrap_or_default().to_owned()
}
