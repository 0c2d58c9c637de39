"""The live journey map: streaming aggregates of every customer's journey (stages, channels, transitions,
funnel, sentiment, NPS, departments, pain points), kept in Redis for the API's /map page."""
