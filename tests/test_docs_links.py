"""Every relative link of the README and of docs/*.md reaches a file of the
repository, and every ``#anchor`` a heading of the page it names.

The pages cross-reference one another by section (the study page points
to each run's section of its runs page); a section renamed or a link
mistyped would otherwise send a reader to the top of a 2,800-line page.
Anchors follow GitHub's rule: the heading's text without markup,
lower-cased, every character that is not a letter, digit, space, ``-``
or ``_`` dropped, spaces made hyphens, and ``-1``, ``-2``... on repeats.
"""
import glob
import os.path as osp
import re

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PAGES = sorted([osp.join(REPO, 'README.md')] +
               glob.glob(osp.join(REPO, 'docs', '*.md')))
LINK = re.compile(r'\]\(([^)\s]+)\)')
FENCE = re.compile(r'^```.*?^```', re.S | re.M)


def slug(heading: str) -> str:
    text = re.sub(r'[*`]', '', heading).strip().lower()
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def anchors(path: str) -> set:
    with open(path, encoding='utf-8') as f:
        text = FENCE.sub('', f.read())
    out, seen = set(), {}
    for line in text.splitlines():
        m = re.match(r'#{1,6} (.+)', line)
        if m:
            s = slug(m.group(1))
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else f'{s}-{n}')
    return out


def test_slug_follows_githubs_rule():
    assert slug('Help at P = 1: the third data seed\'s pair') == \
        'help-at-p--1-the-third-data-seeds-pair'
    assert slug('What more validation images would buy (hurt, zero '
                'padding)') == ('what-more-validation-images-would-buy-'
                                'hurt-zero-padding')
    assert slug('`--converged`: the recipe') == '--converged-the-recipe'


@pytest.mark.parametrize('page', PAGES, ids=lambda p: osp.relpath(p, REPO))
def test_relative_links_reach_a_file_and_a_heading(page):
    with open(page, encoding='utf-8') as f:
        text = FENCE.sub('', f.read())
    broken = []
    for link in LINK.findall(text):
        if re.match(r'[a-z]+:', link):  # http(s), mailto
            continue
        path, _, fragment = link.partition('#')
        target = osp.normpath(osp.join(osp.dirname(page), path)) if path \
            else page
        if not osp.exists(target):
            broken.append(f'{link} (no file {osp.relpath(target, REPO)})')
        elif fragment and target.endswith('.md') and \
                fragment not in anchors(target):
            broken.append(f'{link} (no heading #{fragment} in '
                          f'{osp.relpath(target, REPO)})')
    assert broken == [], f'{osp.relpath(page, REPO)}: broken links'
