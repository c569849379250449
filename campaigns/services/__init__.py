"""The use cases of the product, callable without click: the command line is one shell over
them, the web console another. Each takes an engine and plain typed values (strings as a
person types them are fine), returns frozen values, and raises only the product's own
errors (:class:`campaigns.errors.CampaignsError`), with messages that name the option or the
id and say what to do.

* :mod:`~campaigns.services.create`: a campaign from a CSV, every setting checked first.
* :mod:`~campaigns.services.imports`: more contacts into an existing campaign.
* :mod:`~campaigns.services.dnc`: the do-not-call list (add, import a file, list, remove,
  apply to the campaigns still dialling).
* :mod:`~campaigns.services.lifecycle`: the campaign list and the lifecycle transitions.
* :func:`campaigns.stats.campaign_stats`: a campaign's summary.
* :func:`campaigns.report.write_report`: the outcome report, to any binary stream.

The statements are in ``storage``; the rules in ``campaigns.policy`` and the importer.
"""
