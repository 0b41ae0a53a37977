"""The chaos soak's data set (bench/soak.py): many small teams in three leagues, for the fixture
upstream (`fixture-upstream --dir OUT`), so new team imports keep arriving for the whole run.

- Team t (ID TEAM_BASE + t) plays 6 to 26 matches of league LEAGUES[t % 3], listed on its
  Dotabuff matches pages (20 rows a page, newest first, so some teams have 2 pages).
- Its side is its own five players (ROSTER_BASE + 10 t + k), with a stand-in (k = 5 or 6) in
  about one match in five. The other side is one of OPPONENTS opponent teams with five players
  each (OPPONENT_BASE + 10 o + k), shared by every team: an opponent's players are fetched by
  the first import that meets them and not again, so later imports exercise deduplication.
- Bodies come from bench/gen_league.py (the unparsed match shape with per-minute arrays,
  15-20 KB; the player shape, ~0.8 KB); its page and match builders read the team and league
  from module constants, which are set per team here (`_as_team`).

Deterministic (seeded). `generate` returns and writes `manifest.json` (outside `opendota/` and
`dotabuff/`, so the fixture never serves it): per team its league, matches, players and the
upstream paths an import of it fetches.
"""

import json
import os
import random

import gen_league

TEAM_BASE = 9_810_000
LEAGUES = [(17101, "Soak League A"), (17102, "Soak League B"), (17103, "Soak League C")]
OPPONENTS = 40
OPPONENT_TEAM_BASE = 9_890_000
OPPONENT_BASE = 350_000_000
ROSTER_BASE = 340_000_000
FIRST_MATCH_ID = 8_100_000_000
MATCHES_MIN, MATCHES_MAX = 6, 26
STAND_IN_SHARE = 0.2
FIRST_START = "2025-02-03T18:00:00"


def _as_team(team_id, name, league_id, league_name):
    """Points gen_league's module constants (read by its builders at call time) at one team."""
    gen_league.TEAM_ID = team_id
    gen_league.TEAM_NAME = name
    gen_league.TEAM_TAG = f"S{team_id % 1000}"
    gen_league.LEAGUE_ID = league_id
    gen_league.LEAGUE_NAME = league_name
    gen_league.LEAGUE_SLUG = f"{league_id}-{league_name.lower().replace(' ', '-')}"


def _team(rng, t, files, players):
    """Writes team t's matches and pages into `files`; returns its manifest entry."""
    team_id = TEAM_BASE + t
    league_id, league_name = LEAGUES[t % len(LEAGUES)]
    name = f"Soak Team {t:03d}"
    _as_team(team_id, name, league_id, league_name)
    n = rng.randint(MATCHES_MIN, MATCHES_MAX)
    start = gen_league.ts(FIRST_START) + t * 3600
    matches, results = [], []
    for i in range(n):
        match_id = FIRST_MATCH_ID + 1000 * t + i
        ours = [ROSTER_BASE + 10 * t + k for k in range(5)]
        if rng.random() < STAND_IN_SHARE:
            ours[rng.randrange(5)] = ROSTER_BASE + 10 * t + rng.choice((5, 6))
        o = rng.randrange(OPPONENTS)
        theirs_team = (OPPONENT_TEAM_BASE + o, f"Opponent {o + 1:02d}")
        theirs = [OPPONENT_BASE + 10 * o + k for k in range(5)]
        radiant_is_ours = i % 2 == 0
        sides = ((team_id, name), theirs_team) if radiant_is_ours else (theirs_team, (team_id, name))
        lineups = (ours, theirs) if radiant_is_ours else (theirs, ours)
        body = gen_league.build_match(rng, match_id, start, sides[0], sides[1], lineups,
                                      parsed=False)
        files[f"opendota/matches/{match_id}.json"] = gen_league.compact(body)
        matches.append(body)
        results.append((radiant_is_ours == body["radiant_win"], theirs_team))
        players.update(ours + theirs)
        start += rng.randrange(600, 3000)
    pages = _pages(matches, results, name, files, team_id)
    team_players = sorted({p["account_id"] for m in matches for p in m["players"]})
    return {
        "teamId": str(team_id), "leagueId": str(league_id),
        "matches": [str(m["match_id"]) for m in matches],
        "players": [str(p) for p in team_players],
        "paths": pages + [f"/opendota/matches/{m['match_id']}" for m in matches]
        + [f"/opendota/players/{p}" for p in team_players],
    }


def _pages(matches, results, name, files, team_id):
    """Dotabuff pages, newest first, 20 rows each; returns their fixture stats keys."""
    order = sorted(range(len(matches)), key=lambda i: matches[i]["start_time"], reverse=True)
    per_page = gen_league.ROWS_PER_PAGE
    count = (len(matches) + per_page - 1) // per_page
    wins = sum(1 for won, _ in results if won)
    head = gen_league.PAGE_HEAD.format(name=name, tag=gen_league.TEAM_TAG)
    keys = []
    for page in range(1, count + 1):
        chunk = order[(page - 1) * per_page: page * per_page]
        rows = "".join(gen_league.page_row(matches[i], *results[i]) for i in chunk)
        first = (page - 1) * per_page + 1
        html = (head + rows + f'</tbody></table><div class="viewport">{first} - '
                f'{first + len(chunk) - 1} of {len(matches)} ({wins} won)</div>'
                + (gen_league.pagination(page, count) if count > 1 else "")
                + gen_league.PAGE_TAIL)
        base = f"dotabuff/esports/teams/{team_id}/matches"
        files[f"{base}.html" if page == 1 else f"{base}.page-{page}.html"] = html
        keys.append(f"/{base}" + ("" if page == 1 else f"?page={page}"))
    return keys


def generate(out, teams, seed):
    """Writes `teams` teams (and every player they meet) into `out`; returns the manifest."""
    rng = random.Random(seed)
    files, players = {}, set()
    manifest = {"seed": seed, "teams": [_team(rng, t, files, players) for t in range(teams)]}
    for account_id in sorted(players):
        body = gen_league.player_body(rng, account_id)
        files[f"opendota/players/{account_id}.json"] = gen_league.compact(body)
    for relative, text in files.items():
        path = os.path.join(out, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    manifest["files"] = len(files)
    manifest["bytes"] = sum(len(t.encode()) for t in files.values())
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    return manifest
