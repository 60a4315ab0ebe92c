"""The scenario services' answers (医院缴费, 购房验资, 寒山公园门票, ...), kept as data the bank's
staff edit without retraining the model: conversation/content/scenarios.yml (the words, links and
mini-program pages of each topic) and conversation/content/housing_projects.yml (the projects
whose lottery needs a deposit verification). The bot's retrieval intents only recognise the topic
(faq/<topic>); `answer_for` words the answer for the chat and the mini-program alike.

Both files are checked when read; a broken file raises ContentError naming the topic or project
and the field. `current()` re-reads them when they change and keeps the last good content (with
the error logged) when an edit is broken.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from lending.amounts import format_amount
from sunshine.models import Customer
from sunshine.protect import mask_name
from sunshine.yaml_files import read_yaml

log = logging.getLogger(__name__)

CONTENT_DIR = Path(__file__).with_name("content")
SCENARIOS_FILE = CONTENT_DIR / "scenarios.yml"
PROJECTS_FILE = CONTENT_DIR / "housing_projects.yml"
HOUSING = "housing_lottery"
# A WeChat customer-service text message carries at most 2048 bytes.
WECHAT_TEXT_BYTES = 2048
_TOPIC_FIELDS = {"title", "text", "links", "mini_program", "next_step", "offer"}
_PROJECT_FIELDS = {"name", "aliases", "location", "deposit", "frozen"}
_PAGE_PATH = re.compile(r"[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*(\?[A-Za-z0-9_=&\-]*)?")


class ContentError(ValueError):
    """A content file cannot be used; the message names the file, the entry and the field."""


class DepositBalances(Protocol):
    """The core-banking read the 验资 answer needs: a customer's deposit at the bank."""

    def deposit_balance(self, customer: Customer) -> int | None:
        """The customer's deposits at the bank that a verification can freeze, in yuan (None: it
        cannot be read now; the answer then says what to bring)."""
        ...


@dataclass(frozen=True)
class Link:
    title: str
    url: str


@dataclass(frozen=True)
class MiniProgramPage:
    title: str
    path: str


@dataclass(frozen=True)
class Topic:
    key: str
    title: str
    text: str
    offer: str
    links: tuple[Link, ...] = ()
    mini_program: MiniProgramPage | None = None
    next_step: str | None = None


@dataclass(frozen=True)
class HousingProject:
    name: str
    location: str
    deposit: int
    frozen: str
    aliases: tuple[str, ...] = ()

    def named_in(self, text: str) -> bool:
        return any(n in text for n in (self.name, *self.aliases))


@dataclass(frozen=True)
class Content:
    topics: dict[str, Topic]
    projects: tuple[HousingProject, ...]


@dataclass(frozen=True)
class ScenarioAnswer:
    """One topic's answer for one customer: the topic's own words, what this customer can do
    next (when known) and one offer of the bank's service, last."""

    topic: str
    title: str
    text: str
    offer: str
    next_step: str | None = None
    links: tuple[Link, ...] = ()
    mini_program: MiniProgramPage | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "title": self.title,
            "text": self.text,
            "next_step": self.next_step,
            "offer": self.offer,
            "links": [{"title": link.title, "url": link.url} for link in self.links],
            "mini_program": (
                {"title": self.mini_program.title, "path": self.mini_program.path} if self.mini_program else None
            ),
        }

    def chat_text(self, mini_program_appid: str | None = None) -> str:
        """The answer as one WeChat text message; the mini-program page as WeChat's link to it."""
        parts = [self.text]
        if self.next_step:
            parts.append(self.next_step)
        parts += [f"{link.title}：{link.url}" for link in self.links]
        if self.mini_program and mini_program_appid:
            parts.append(
                f'<a data-miniprogram-appid="{mini_program_appid}" '
                f'data-miniprogram-path="{self.mini_program.path}">{self.mini_program.title}</a>'
            )
        parts.append(self.offer)
        return "\n".join(parts)


def _text(where: str, raw: dict, name: str, required: bool = True) -> str | None:
    value = raw.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ContentError(f"{where}: {name} must be non-empty text")
    return value.strip()


def _unknown(where: str, raw: dict, allowed: set[str]) -> None:
    extra = sorted(set(raw) - allowed)
    if extra:
        raise ContentError(f"{where}: unknown field {', '.join(extra)} (allowed: {', '.join(sorted(allowed))})")


def _topic(key: str, raw: Any) -> Topic:
    where = f"scenarios.yml, topic {key}"
    if not isinstance(raw, dict):
        raise ContentError(f"{where}: must be a mapping of fields")
    _unknown(where, raw, _TOPIC_FIELDS)
    links = []
    for i, link in enumerate(raw.get("links") or [], 1):
        if not isinstance(link, dict):
            raise ContentError(f"{where}: link {i} must have a title and a url")
        _unknown(f"{where}, link {i}", link, {"title", "url"})
        title, url = _text(f"{where}, link {i}", link, "title"), _text(f"{where}, link {i}", link, "url")
        if not re.fullmatch(r"https://[^\s]+", url or ""):
            raise ContentError(f"{where}, link {i}: url must start with https:// and have no spaces")
        links.append(Link(title or "", url or ""))
    page = None
    if raw.get("mini_program") is not None:
        mp = raw["mini_program"]
        if not isinstance(mp, dict):
            raise ContentError(f"{where}: mini_program must have a title and a path")
        _unknown(f"{where}, mini_program", mp, {"title", "path"})
        path = _text(f"{where}, mini_program", mp, "path") or ""
        if not _PAGE_PATH.fullmatch(path):
            raise ContentError(
                f"{where}, mini_program: path {path!r} must be a page path such as pages/services/hospital "
                "(no leading slash)"
            )
        page = MiniProgramPage(_text(f"{where}, mini_program", mp, "title") or "", path)
    next_step = _text(where, raw, "next_step", required=False)
    if next_step is not None:
        try:
            next_step.format(name="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ContentError(f"{where}: next_step may use only {{name}} ({exc})") from exc
    topic = Topic(
        key=key,
        title=_text(where, raw, "title") or "",
        text=_text(where, raw, "text") or "",
        offer=_text(where, raw, "offer") or "",
        links=tuple(links),
        mini_program=page,
        next_step=next_step,
    )
    longest = ScenarioAnswer(key, topic.title, topic.text, topic.offer, next_step, topic.links, page).chat_text(
        "wx" + "0" * 16
    )
    if len(longest.encode("utf-8")) > WECHAT_TEXT_BYTES - 300:  # room for a customer's next step
        raise ContentError(
            f"{where}: the answer is {len(longest.encode('utf-8'))} bytes, too long for one WeChat message "
            f"(at most {WECHAT_TEXT_BYTES - 300} bytes with links and offer)"
        )
    return topic


def _project(i: int, raw: Any) -> HousingProject:
    where = f"housing_projects.yml, project {i}"
    if not isinstance(raw, dict):
        raise ContentError(f"{where}: must be a mapping of fields")
    name = _text(where, raw, "name") or ""
    where = f"housing_projects.yml, project {name}"
    _unknown(where, raw, _PROJECT_FIELDS)
    deposit = raw.get("deposit")
    if not isinstance(deposit, int) or isinstance(deposit, bool) or deposit <= 0:
        raise ContentError(f"{where}: deposit must be a whole number of yuan above 0")
    aliases = raw.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        raise ContentError(f"{where}: aliases must be a list of names")
    return HousingProject(
        name=name,
        location=_text(where, raw, "location") or "",
        deposit=deposit,
        frozen=_text(where, raw, "frozen") or "",
        aliases=tuple(a.strip() for a in aliases),
    )


def _yaml(path: Path, key: str) -> Any:
    try:
        data = read_yaml(path)
    except OSError as exc:
        raise ContentError(f"{path.name}: cannot be read ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ContentError(f"{path.name}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict) or key not in data:
        raise ContentError(f"{path.name}: needs a top-level {key}:")
    return data[key]


def read_content(scenarios: Path = SCENARIOS_FILE, projects: Path = PROJECTS_FILE) -> Content:
    """Both content files, checked; ContentError names the first problem."""
    raw_topics = _yaml(scenarios, "topics")
    if not isinstance(raw_topics, dict) or not raw_topics:
        raise ContentError("scenarios.yml: topics must map each topic to its fields")
    topics = {str(key): _topic(str(key), raw) for key, raw in raw_topics.items()}
    raw_projects = _yaml(projects, "projects")
    if not isinstance(raw_projects, list):
        raise ContentError("housing_projects.yml: projects must be a list")
    found = tuple(_project(i, raw) for i, raw in enumerate(raw_projects, 1))
    names: dict[str, str] = {}
    for project in found:
        for name in (project.name, *project.aliases):
            if name in names:
                raise ContentError(
                    f"housing_projects.yml, project {project.name}: the name {name} is already {names[name]}'s"
                )
            names[name] = project.name
    return Content(topics, found)


@dataclass
class _Loaded:
    stamp: tuple[int, int] | None = None
    content: Content | None = None
    problem: str | None = None


_loaded = _Loaded()


def current(scenarios: Path | None = None, projects: Path | None = None) -> Content:
    """The content in force: re-read when a file changed; a broken edit is logged and the last good
    content kept (the first read raises, so that a process never starts on broken content)."""
    scenarios, projects = scenarios or SCENARIOS_FILE, projects or PROJECTS_FILE
    stamp = (scenarios.stat().st_mtime_ns, projects.stat().st_mtime_ns)
    if _loaded.content is None or stamp != _loaded.stamp:
        try:
            _loaded.content = read_content(scenarios, projects)
            _loaded.problem = None
        except ContentError as exc:
            if _loaded.content is None:
                raise
            if str(exc) != _loaded.problem:
                log.error("scenario content not reloaded, the last good one stays in use: %s", exc)
            _loaded.problem = str(exc)
        _loaded.stamp = stamp
    return _loaded.content


def topics() -> list[str]:
    """The topics the content file answers."""
    return list(current().topics)


def _housing_next_step(content: Content, customer: Customer | None, said: str, deposits: DepositBalances | None) -> str:
    """Which deposit the named project requires and whether the customer's deposit covers it."""
    project = next((p for p in content.projects if p.named_in(said)), None)
    if project is None:
        listed = "；".join(f"{p.name}（{p.location}）验资{format_amount(p.deposit)}" for p in content.projects)
        return f"目前要在咱们银行验资的楼盘：{listed}。告诉我您报的是哪个楼盘，我帮您看看存款够不够。"
    need = f"{project.name}摇号要验资{format_amount(project.deposit)}，{project.frozen}。"
    bring = "办理时带上本人身份证和咱们银行的卡；钱在别的银行的，提前转到本人的咱们银行卡里。"
    if customer is None:
        return need + bring + "绑定微信后，我可以帮您查存款够不够。"
    balance = deposits.deposit_balance(customer) if deposits is not None else None
    if balance is None:
        return need + bring
    if balance >= project.deposit:
        return (
            f"{need}{mask_name(customer.name)}您好，您在咱们银行的存款够验资金额，"
            "带上身份证和银行卡到网点就能当场出资金证明。"
        )
    return (
        f"{need}{mask_name(customer.name)}您好，您在咱们银行的存款还差{format_amount(project.deposit - balance)}，"
        f"存够后再来办。{bring}"
    )


def answer_for(
    topic: str,
    customer: Customer | None = None,
    said: str = "",
    deposits: DepositBalances | None = None,
) -> ScenarioAnswer:
    """The topic's answer for this customer (None: not known), given what they said (the 验资
    answer looks for a project's name in it). KeyError for a topic the content does not have."""
    content = current()
    topic_content = content.topics[topic]
    if topic == HOUSING:
        next_step: str | None = _housing_next_step(content, customer, said, deposits)
    elif customer is not None and topic_content.next_step:
        next_step = topic_content.next_step.format(name=mask_name(customer.name))
    else:
        next_step = None
    return ScenarioAnswer(
        topic=topic,
        title=topic_content.title,
        text=topic_content.text,
        offer=topic_content.offer,
        next_step=next_step,
        links=topic_content.links,
        mini_program=topic_content.mini_program,
    )
