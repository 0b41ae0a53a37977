#!/usr/bin/env python3
"""Writes a synthetic data set for the fixture upstream (`fixture-upstream --dir OUT`) into a
directory, for the read-path benchmark (`bench/readpath.py`):

- a league of N matches (default 300) for one team, listed on that team's Dotabuff matches pages
  (20 rows per page as on dotabuff.com, newest first, Kaminari pagination; the markup is the demo
  data set's, see `fixtures/generate_demo.py`), with one OpenDota match body per match;
- the players of those matches (default 3,000 distinct accounts), one OpenDota `/players/{id}`
  body each (~0.8 KB);
- one large *parsed* match (~300 KB, per-minute series, logs, damage maps, lane positions: the
  shape of a real parsed OpenDota match) with its 10 players, and one more player on its own
  (~0.9 KB): the two bodies the benchmark loads with wrk.

League match bodies have the real unparsed shape (10 players with their scalar stats, picks and
bans) plus the per-minute `gold_t`/`xp_t`/`lh_t`/`dn_t`/`times` arrays, about 15-20 KB each as
compact JSON. Real parsed matches are 200-450 KB; 300 of those (~100 MB) would make the import
slow to fetch and store without changing what the team view reads per match, so the league uses
the smaller shape (said so in BENCHMARKS.md). With `--parsed` every league match has the parsed
shape instead (~290 KB, ~56 KB at gzip 6): the scale benchmark (`bench/scale.py`) stores a
1,000-match league of those to measure disk, memory and CPU per stored match.

Files are written as they are made, so a 1,000-match parsed league (~290 MB) is never held in
memory whole.

Players: slot k of the league (match i, slot s: k = 10 i + s) is account BASE + (k mod N). With
the default N = 3,000 every slot is its own account (a synthetic league; the view's cost depends
on how many players it lists, not on who they are). Deterministic (fixed seed), stdlib only;
OpenDota bodies are compact JSON as OpenDota sends them. Also writes `manifest.json` (IDs and
sizes) at the top of OUT, outside `opendota/` and `dotabuff/`, so the fixture never serves it.

Usage: gen_league.py OUT_DIR [--matches 300] [--players 3000] [--seed 17000] [--parsed]
"""

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import sys

TEAM_ID = 9700001
TEAM_NAME = "Bench Marks"
TEAM_TAG = "BM"
LEAGUE_ID = 17000
LEAGUE_NAME = "Readpath League"
LEAGUE_SLUG = f"{LEAGUE_ID}-readpath-league"
OPPONENTS = 30  # opponent teams 9700101.. 9700130, taken in turn
LEAGUE_PLAYER_BASE = 320_000_000
LARGE_MATCH_ID = 7_999_000_001
LARGE_MATCH_PLAYER_BASE = 330_000_001  # its 10 players
SOLO_PLAYER_ID = 330_000_100  # the ~1 KB player the benchmark loads
FIRST_MATCH_ID = 8_000_000_000
FIRST_START = "2025-01-06T18:00:00"
ROWS_PER_PAGE = 20  # as on dotabuff.com

HERO_IDS = [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 13, 14, 17, 18, 19, 20, 21, 22, 25, 26, 27, 29, 30,
            31, 33, 35, 36, 39, 41, 44, 49, 51, 53, 54, 64, 69, 70, 74, 75, 83, 86, 88, 94, 96,
            100, 104, 106, 110, 112, 119, 120, 121, 126, 128, 129, 135, 137]
ITEMS = [1, 36, 48, 50, 63, 65, 96, 108, 114, 116, 135, 139, 143, 145, 147, 152, 154, 160,
         168, 172, 178, 180, 190, 208, 214, 223, 231, 235, 242, 249, 250, 254, 263]
ITEM_NAMES = ["blink", "magic_wand", "power_treads", "black_king_bar", "bottle", "tango",
              "clarity", "flask", "ward_observer", "ward_sentry", "boots", "blade_mail",
              "force_staff", "glimmer_cape", "manta", "desolator", "skadi", "butterfly",
              "aghanims_shard", "ultimate_scepter", "sphere", "heart", "satanic", "travel_boots"]
ABILITIES = [f"ability_{n}" for n in ("q", "w", "e", "r", "d", "f")]
NEUTRALS = [349, 354, 358, 565, 573, 585, 600, 638, 675, 676, 950, 1157]
PAGE_HEAD = (
    '<!DOCTYPE html><html class="esports-skin"><head><meta content="text/html; charset=utf-8" '
    'http-equiv="Content-Type" /><title>{name} - Matches - DOTABUFF - Dota 2 Stats</title></head>'
    '<body><div class="container-outer"><div class="header-content"><div class="header-content-title">'
    '<h1>{name}<small>Matches</small></h1></div><div class="header-content-secondary"><dl><dd>{tag}'
    '</dd><dt>Team Tag</dt></dl></div></div><section><article>'
    '<table class="table table-striped recent-esports-matches"><thead><tr><th>League</th>'
    '<th>Result</th><th>Series</th><th class="r-none-mobile">Duration</th>'
    '<th class="r-none-tablet">{name}&#39;s Heroes</th><th>Opponent</th></tr></thead><tbody>'
)
PAGE_TAIL = '</article></section></div></body></html>\n'


def ts(iso):
    return int(dt.datetime.fromisoformat(iso).replace(tzinfo=dt.timezone.utc).timestamp())


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def avatar(account_id):
    return "https://avatars.steamstatic.com/" + hashlib.sha1(str(account_id).encode()).hexdigest()


def opponent(i):
    team = 9_700_101 + i % OPPONENTS
    return team, f"Opponent {i % OPPONENTS + 1:02d}"


def cumulative(rng, minutes, per_minute):
    """A per-minute running total (gold, xp, last hits), as OpenDota's `*_t` arrays."""
    out, total = [0], 0
    for _ in range(minutes):
        total += max(0, int(per_minute * rng.uniform(0.6, 1.4)))
        out.append(total)
    return out


def player_line(rng, account_id, slot, radiant, ctx, parsed):
    minutes = ctx["duration"] // 60
    win = radiant == ctx["radiant_win"]
    gpm, xpm = rng.randrange(250, 800), rng.randrange(300, 900)
    kills, deaths, assists = rng.randrange(0, 16), rng.randrange(0, 12), rng.randrange(0, 25)
    line = {"account_id": account_id, "player_slot": slot if radiant else 128 + slot,
            "party_size": 10, "hero_id": ctx["heroes"][slot + (0 if radiant else 5)],
            "hero_variant": rng.choice([1, 2])}
    for n, item in enumerate(rng.sample(ITEMS, 6)):
        line[f"item_{n}"] = item
    line.update({
        "item_neutral": rng.choice(NEUTRALS), "kills": kills, "deaths": deaths,
        "assists": assists, "leaver_status": 0, "last_hits": rng.randrange(20, 500),
        "denies": rng.randrange(0, 20), "gold_per_min": gpm, "xp_per_min": xpm,
        "level": min(30, 6 + xpm * minutes // 1300), "net_worth": gpm * minutes * 4 // 5,
        "hero_damage": rng.randrange(3000, 60000), "tower_damage": rng.randrange(0, 12000),
        "hero_healing": rng.choice([0, 0, rng.randrange(200, 8000)]),
        "gold": rng.randrange(100, 4000), "gold_spent": gpm * minutes * 3 // 4,
        "personaname": f"player{account_id}", "name": None,
        "last_login": None, "rank_tier": rng.choice([None, 35, 44, 52, 61, 65, 73, 80]),
        "times": list(range(0, minutes * 60 + 1, 60)),
        "gold_t": cumulative(rng, minutes, gpm),
        "xp_t": cumulative(rng, minutes, xpm),
        "lh_t": cumulative(rng, minutes, 6),
        "dn_t": cumulative(rng, minutes, 0.4),
    })
    if parsed:
        line.update(parsed_player_fields(rng, minutes))
    line.update({
        "radiant_win": ctx["radiant_win"], "start_time": ctx["start_time"],
        "duration": ctx["duration"], "cluster": ctx["cluster"], "lobby_type": 1, "game_mode": 2,
        "patch": 56, "region": 2, "isRadiant": radiant, "win": int(win), "lose": int(not win),
        "total_gold": gpm * minutes, "total_xp": xpm * minutes,
        "kills_per_min": round(kills / max(1, minutes), 4),
        "kda": round((kills + assists) / (deaths + 1), 2),
    })
    return line


def parsed_player_fields(rng, minutes):
    """What a parsed replay adds per player: logs, damage maps, lane positions (~25 KB)."""
    heroes = [f"npc_dota_hero_{h}" for h in rng.sample(HERO_IDS, 5)]
    lane_pos = {}
    for _ in range(700):
        x, y = str(rng.randrange(64, 190)), str(rng.randrange(64, 190))
        lane_pos.setdefault(x, {})[y] = rng.randrange(1, 40)
    return {
        "purchase_log": [{"time": t, "key": rng.choice(ITEM_NAMES)}
                         for t in sorted(rng.randrange(-90, minutes * 60) for _ in range(100))],
        "kills_log": [{"time": rng.randrange(60, minutes * 60), "key": rng.choice(heroes)}
                      for _ in range(rng.randrange(2, 14))],
        "buyback_log": [],
        "runes_log": [{"time": 120 * n, "key": rng.randrange(0, 7)} for n in range(8)],
        "obs_log": [{"time": rng.randrange(0, minutes * 60), "type": "obs_log",
                     "x": rng.randrange(70, 180), "y": rng.randrange(70, 180), "z": 128,
                     "entityleft": False, "ehandle": rng.randrange(10**6, 10**7), "key": "[0,0]"}
                    for _ in range(rng.randrange(0, 12))],
        "damage": {h: rng.randrange(100, 20000) for h in heroes},
        "damage_taken": {h: rng.randrange(100, 20000) for h in heroes},
        "damage_inflictor": {a: rng.randrange(100, 9000) for a in ABILITIES},
        "hero_hits": {h: rng.randrange(1, 200) for h in heroes},
        "killed": {f"npc_dota_creep_{n}": rng.randrange(1, 150) for n in range(30)},
        "ability_uses": {a: rng.randrange(1, 90) for a in ABILITIES},
        "item_uses": {i: rng.randrange(1, 60) for i in rng.sample(ITEM_NAMES, 12)},
        "gold_reasons": {str(n): rng.randrange(100, 9000) for n in (0, 1, 2, 11, 12, 13, 14)},
        "xp_reasons": {str(n): rng.randrange(100, 9000) for n in (0, 1, 2, 3)},
        "lane_pos": lane_pos,
        "actions": {str(n): rng.randrange(1, 3000) for n in range(1, 36)},
        "ability_upgrades_arr": [rng.randrange(5000, 8000) for _ in range(25)],
        "life_state": {"0": rng.randrange(2000, 4000), "1": 12, "2": rng.randrange(100, 900)},
        "damage_targets": {a: {h: rng.randrange(50, 6000) for h in heroes} for a in ABILITIES},
        "ability_targets": {a: {h: rng.randrange(1, 30) for h in heroes} for a in ABILITIES[:4]},
        "purchase": {i: rng.randrange(1, 12) for i in rng.sample(ITEM_NAMES, 16)},
        "purchase_time": {i: rng.randrange(0, minutes * 60) for i in rng.sample(ITEM_NAMES, 16)},
        "first_purchase_time": {i: rng.randrange(0, minutes * 60)
                                for i in rng.sample(ITEM_NAMES, 16)},
        "item_usage": {i: 1 for i in rng.sample(ITEM_NAMES, 16)},
        "item_win": {i: rng.randrange(0, 2) for i in rng.sample(ITEM_NAMES, 16)},
        "killed_by": {h: rng.randrange(1, 5) for h in heroes[:3]},
        "multi_kills": {"2": rng.randrange(0, 4)}, "kill_streaks": {"3": rng.randrange(0, 3)},
        "max_hero_hit": {"type": "max_hero_hit", "time": rng.randrange(0, minutes * 60),
                         "max": True, "inflictor": rng.choice(ABILITIES), "unit": heroes[0],
                         "key": heroes[1], "value": rng.randrange(200, 2000), "slot": 0,
                         "player_slot": 0},
        "connection_log": [], "pred_vict": False, "randomed": False, "repicked": None,
        "cosmetics": [{"item_id": rng.randrange(4000, 30000), "name": f"Cosmetic {n}",
                       "prefab": "wearable", "creation_date": None,
                       "image_inventory": f"econ/items/hero/cosmetic_{n}",
                       "image_path": f"icons/econ/items/hero/cosmetic_{n}.png",
                       "item_description": "#DOTA_Item_Desc", "item_name": f"#DOTA_Item_{n}",
                       "item_rarity": rng.choice(["common", "rare", "mythical"]),
                       "item_type_name": "#DOTA_WearableType_Armor", "used_by_heroes": heroes[0]}
                      for n in range(22)],
        "benchmarks": {k: {"raw": round(rng.uniform(0, 900), 2), "pct": round(rng.random(), 4)}
                       for k in ("gold_per_min", "xp_per_min", "kills_per_min",
                                 "last_hits_per_min", "hero_damage_per_min",
                                 "hero_healing_per_min", "tower_damage")},
    }


def build_match(rng, match_id, start, radiant_team, dire_team, lineups, parsed):
    """One OpenDota match body. `radiant_team`/`dire_team` are (id, name)."""
    duration = rng.randrange(1500, 3300)
    heroes = rng.sample(HERO_IDS, 24)
    ctx = {"radiant_win": rng.random() < 0.55, "start_time": start, "duration": duration,
           "cluster": rng.choice([121, 122, 123]), "heroes": heroes}
    players = [player_line(rng, a, s, True, ctx, parsed) for s, a in enumerate(lineups[0])]
    players += [player_line(rng, a, s, False, ctx, parsed) for s, a in enumerate(lineups[1])]
    salt = rng.randrange(10**8, 10**9)
    body = {
        "match_id": match_id, "players": players, "series_id": 2_900_000 + match_id % 1000,
        "series_type": 1, "cluster": ctx["cluster"], "replay_salt": salt,
        "radiant_win": ctx["radiant_win"], "duration": duration, "pre_game_duration": 90,
        "start_time": start, "match_seq_num": match_id - 1_280_000_000, "first_blood_time":
        rng.randrange(20, 300), "lobby_type": 1, "human_players": 10, "leagueid": LEAGUE_ID,
        "game_mode": 2, "flags": 1, "engine": 1,
        "radiant_score": rng.randrange(12, 45), "dire_score": rng.randrange(12, 45),
        "radiant_team_id": radiant_team[0], "radiant_name": radiant_team[1],
        "radiant_team_complete": 1, "dire_team_id": dire_team[0], "dire_name": dire_team[1],
        "dire_team_complete": 1, "radiant_captain": lineups[0][0], "dire_captain": lineups[1][0],
        "picks_bans": [{"is_pick": n in (7, 8, 12, 13, 14, 15, 16, 17, 22, 23), "hero_id": h,
                        "team": n % 2, "order": n} for n, h in enumerate(heroes)],
        "od_data": {"has_api": True, "has_gcdata": True, "has_parsed": parsed,
                    "has_archive": False},
        "replay_url": f"http://replay{ctx['cluster']}.valve.net/570/{match_id}_{salt}.dem.bz2",
        "patch": 56, "region": 2,
    }
    if parsed:
        minutes = duration // 60
        body.update({
            "radiant_gold_adv": [rng.randrange(-15000, 15000) for _ in range(minutes + 1)],
            "radiant_xp_adv": [rng.randrange(-15000, 15000) for _ in range(minutes + 1)],
            "objectives": [{"time": rng.randrange(0, duration), "type": "building_kill",
                            "unit": "npc_dota_hero_x", "key": f"npc_dota_badguys_tower{n}"}
                           for n in range(20)],
            "teamfights": [{"start": s, "end": s + 30, "last_death": s + 25,
                            "deaths": rng.randrange(2, 8),
                            "players": [{"deaths": rng.randrange(0, 2),
                                         "buybacks": 0, "damage": rng.randrange(0, 5000),
                                         "healing": 0, "gold_delta": rng.randrange(-500, 900),
                                         "xp_delta": rng.randrange(0, 900)} for _ in range(10)]}
                           for s in sorted(rng.sample(range(300, duration), 25))],
            "chat": [{"time": rng.randrange(0, duration), "type": "chatwheel",
                      "key": str(rng.randrange(1, 300)), "slot": rng.randrange(0, 10),
                      "player_slot": rng.choice([0, 1, 2, 3, 4, 128, 129, 130, 131, 132])}
                     for _ in range(30)],
        })
    return body


def player_body(rng, account_id):
    """An OpenDota `/players/{id}` body in the current format (no `mmr_estimate`)."""
    steamid = str(76561197960265728 + account_id)
    url = avatar(account_id)
    return {
        "profile": {
            "account_id": account_id, "personaname": f"player{account_id}", "name": None,
            "plus": account_id % 2 == 0, "cheese": 0, "steamid": steamid,
            "avatar": url + ".jpg", "avatarmedium": url + "_medium.jpg",
            "avatarfull": url + "_full.jpg",
            "profileurl": f"https://steamcommunity.com/profiles/{steamid}/",
            "last_login": None, "loccountrycode": rng.choice(["US", "DE", "BR", "RU", None]),
            "status": None, "fh_unavailable": False, "is_contributor": False,
            "is_subscriber": False,
        },
        "rank_tier": rng.choice([None, 35, 44, 52, 61, 65, 73, 80]),
        "leaderboard_rank": None,
        "computed_mmr": round(rng.uniform(1500, 6500), 4),
        "aliases": [{"personaname": f"player{account_id}-{n}",
                     "name_since": f"202{n}-0{n + 1}-1{n}T12:00:00.000Z"} for n in range(3)],
    }


def page_row(match, won, opponent_team):
    when = dt.datetime.fromtimestamp(match["start_time"], dt.timezone.utc)
    iso = when.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    team_id, name = opponent_team
    slug = f"{team_id}-{name.lower().replace(' ', '-')}"
    link = (f'class="esports-team esports-link team-link" rel="tooltip-remote" '
            f'data-tooltip-url="/esports/teams/{slug}/tooltip" href="/esports/teams/{slug}"')
    minutes, seconds = divmod(match["duration"], 60)
    return (
        f'<tr><td><a class="esports-league esports-link league-link" rel="tooltip-remote" '
        f'href="/esports/leagues/{LEAGUE_SLUG}"><span class="league-image">'
        f'<img alt="{LEAGUE_NAME}" class="img-league img-avatar" '
        f'src="https://riki.dotabuff.com/leagues/{LEAGUE_ID}/banner.png" /></span></a></td>'
        f'<td><div><a class="{"won" if won else "lost"}" href="/matches/{match["match_id"]}">'
        f'{"Won" if won else "Lost"} Match</a></div><span class="r-none-mobile">'
        f'<time datetime="{iso}" data-time-ago="{iso}">{when.strftime("%Y-%m-%d")}</time></span>'
        f'</td><td><div><a href="/esports/series/{match["series_id"]}">Series '
        f'{match["series_id"]}</a></div><small>Europe West</small></td>'
        f'<td class="r-none-mobile">{minutes}:{seconds:02d}</td><td class="r-none-tablet '
        f'cell-icons"></td><td class="cell-icons"><a {link}><span class="team-image"><img '
        f'alt="{name}" class="img-team img-avatar" src="/t/{team_id}.png" /></span></a> '
        f'<a {link}><span class="team-text team-text-full">{name}</span></a></td></tr>'
    )


def pagination(page, pages):
    base = f"/esports/teams/{TEAM_ID}/matches"
    parts = []
    if page > 1:
        parts.append(f'<span class="first"><a href="{base}">&laquo; First</a></span>')
        parts.append(f'<span class="prev"><a rel="prev" href="{base}?page={page - 1}">&lsaquo; '
                     'Prev</a></span>')
    for n in range(1, pages + 1):
        parts.append(f'<span class="page current">{n}</span>' if n == page else
                     f'<span class="page"><a href="{base}?page={n}">{n}</a></span>')
    if page < pages:
        parts.append(f'<span class="next"><a rel="next" href="{base}?page={page + 1}">Next '
                     '&rsaquo;</a></span>')
        parts.append(f'<span class="last"><a href="{base}?page={pages}">Last &raquo;</a></span>')
    return '<nav class="pagination">' + "".join(parts) + "</nav>"


def generate(out, n_matches=300, n_players=3000, seed=17000, parsed=False):
    """Writes the data set into `out` and returns the manifest (also written as manifest.json).
    `parsed`: every league match has the parsed shape (see the module docs)."""
    if n_matches < 1 or n_players < 10:
        raise ValueError("need at least 1 match and 10 players")
    rng = random.Random(seed)
    sizes = {}

    def write(relative, text):
        data = text.encode("utf-8")
        path = os.path.join(out, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        sizes[relative] = len(data)

    # Only what the pages need is kept of each match: the bodies go to disk at once.
    matches, results = [], []
    start = ts(FIRST_START)
    for i in range(n_matches):
        match_id = FIRST_MATCH_ID + 17 * i + rng.randrange(17)
        slots = [LEAGUE_PLAYER_BASE + (10 * i + s) % n_players for s in range(10)]
        ours, theirs = (TEAM_ID, TEAM_NAME), opponent(i)
        radiant_is_ours = i % 2 == 0
        sides = (ours, theirs) if radiant_is_ours else (theirs, ours)
        body = build_match(rng, match_id, start, sides[0], sides[1], (slots[:5], slots[5:]),
                           parsed=parsed)
        write(f"opendota/matches/{match_id}.json", compact(body))
        matches.append({k: body[k] for k in ("match_id", "start_time", "duration", "series_id")})
        results.append((radiant_is_ours == body["radiant_win"], theirs))
        start += rng.randrange(3000, 40000)
    league_players = sorted({LEAGUE_PLAYER_BASE + k % n_players for k in range(10 * n_matches)})
    for account_id in league_players:
        write(f"opendota/players/{account_id}.json", compact(player_body(rng, account_id)))

    # Dotabuff: newest first, 20 rows per page.
    order = sorted(range(n_matches), key=lambda i: matches[i]["start_time"], reverse=True)
    pages = (n_matches + ROWS_PER_PAGE - 1) // ROWS_PER_PAGE
    wins = sum(1 for won, _ in results if won)
    head = PAGE_HEAD.format(name=TEAM_NAME, tag=TEAM_TAG)
    for page in range(1, pages + 1):
        chunk = order[(page - 1) * ROWS_PER_PAGE: page * ROWS_PER_PAGE]
        rows = "".join(page_row(matches[i], *results[i]) for i in chunk)
        first = (page - 1) * ROWS_PER_PAGE + 1
        html = (head + rows + f'</tbody></table><div class="viewport">{first} - '
                f'{first + len(chunk) - 1} of {n_matches} ({wins} won)</div>'
                + (pagination(page, pages) if pages > 1 else "") + PAGE_TAIL)
        name = "matches.html" if page == 1 else f"matches.page-{page}.html"
        write(f"dotabuff/esports/teams/{TEAM_ID}/{name}", html)

    # The two bodies loaded with wrk: one large parsed match (and its players), one player.
    big_players = [LARGE_MATCH_PLAYER_BASE + s for s in range(10)]
    big = build_match(rng, LARGE_MATCH_ID, ts("2025-03-01T18:00:00"), (TEAM_ID, TEAM_NAME),
                      opponent(0), (big_players[:5], big_players[5:]), parsed=True)
    write(f"opendota/matches/{LARGE_MATCH_ID}.json", compact(big))
    for account_id in big_players + [SOLO_PLAYER_ID]:
        write(f"opendota/players/{account_id}.json", compact(player_body(rng, account_id)))

    league_sizes = sorted(sizes[f"opendota/matches/{m['match_id']}.json"] for m in matches)
    manifest = {
        "teamId": str(TEAM_ID), "leagueId": str(LEAGUE_ID), "matches": n_matches,
        "players": len(league_players), "parsed": parsed,
        "dotabuffPages": pages, "seed": seed,
        "leagueMatchBytes": {"min": league_sizes[0], "median": league_sizes[len(league_sizes) // 2],
                             "max": league_sizes[-1], "total": sum(league_sizes)},
        "leaguePlayerBytes": sum(sizes[f"opendota/players/{a}.json"] for a in league_players),
        "largeMatchId": str(LARGE_MATCH_ID),
        "largeMatchBytes": sizes[f"opendota/matches/{LARGE_MATCH_ID}.json"],
        "playerId": str(SOLO_PLAYER_ID),
        "playerBytes": sizes[f"opendota/players/{SOLO_PLAYER_ID}.json"],
        "files": len(sizes),
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return manifest


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--matches", type=int, default=300)
    ap.add_argument("--players", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=17000)
    ap.add_argument("--parsed", action="store_true",
                    help="every league match in the parsed shape (~290 KB each)")
    args = ap.parse_args()
    try:
        manifest = generate(args.out, args.matches, args.players, args.seed, args.parsed)
    except ValueError as e:
        sys.exit(str(e))
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
