"""What shows a lab in a notebook: the ipywidgets control panel and the notebook helpers that
start a lab or join one that runs.
"""
