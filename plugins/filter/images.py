# Copyright: Rollcall contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja filters over plugins/module_utils/images.py (issue 13 item 5): what a release of a refreshed image is, which
build a deploy uses (a release's, a recorded database or proxy image's), the database engine's update (decide, the
data checks, what to do on failure) and the proxy's refresh (decide, the live upstream, what to do on failure)."""

from ansible_collections.rollcall.ops.plugins.module_utils import images


def release_app_version(version):
    """The version the application reports in a release: a refreshed image's ``1.0.0-p20261202`` is ``1.0.0``."""
    return images.base_version(version)


def refreshed_build(requested, candidates, use_refreshed=True, history=None):
    """``images.pick_build`` with the versions a rollback went back from (``history``) left out."""
    return images.pick_build(requested, candidates or [], use_refreshed, images.withdrawn_versions(history or []))


def db_refresh_decide(the_plan, engine, backup_age_s, max_age_s, force=False):
    return images.db_refresh_decide(the_plan, engine, backup_age_s, max_age_s, force)


def db_data_query(engine, database, tables=None):
    """The tables query (``tables`` none) or the row-count query of ``tables``."""
    return images.tables_query(engine, database) if tables is None else images.count_query(engine, tables)


def db_snapshot(version_text, counts_output):
    """``{"version", "counts"}`` from the server's version answer and the count query's output."""
    return {"version": images.engine_version(version_text), "counts": images.parse_counts(counts_output)}


def db_checks(before, after, ready=None):
    return images.db_checks(before, after, ready)


def db_on_failure(host, old_image, new_image, stage, error):
    return images.db_on_failure(host, old_image, new_image, stage, error)


def recorded_image(ref, record=None, present_tags=None, use_refreshed=True):
    """``images.recorded_image``: the image a deploy runs for ``ref`` given patching's record."""
    return images.recorded_image(ref, record, present_tags or [], use_refreshed)


def image_decide(the_plan, force=False):
    return images.decide(the_plan, force)


def proxy_upstream(conf):
    return images.proxy_upstream(conf)


def proxy_on_failure(host, old_image, new_image, stage, error, upstream=None, drained=False):
    return images.proxy_on_failure(host, old_image, new_image, stage, error, upstream, drained)


class FilterModule:
    def filters(self):
        return {"release_app_version": release_app_version, "refreshed_build": refreshed_build,
                "db_refresh_decide": db_refresh_decide, "db_data_query": db_data_query, "db_snapshot": db_snapshot,
                "db_checks": db_checks, "db_on_failure": db_on_failure,
                "recorded_image": recorded_image, "image_decide": image_decide, "proxy_upstream": proxy_upstream,
                "proxy_on_failure": proxy_on_failure}
