{
    "name": "AI Cost Optimizer: test client",
    "summary": "Another module calling the AI gateway from its own controller (tests and the scale check)",
    "version": "18.0.1.0.0",
    "category": "Hidden/Tests",
    "license": "LGPL-3",
    "depends": ["ai_cost_optimizer"],
    "data": [],
    "installable": True,
    "application": False,
}
